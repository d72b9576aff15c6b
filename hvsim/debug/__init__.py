"""The step debugger for VM exits (`hvsim debug`)."""
