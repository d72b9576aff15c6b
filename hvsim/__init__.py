"""hvsim: the front (command line, step debugger, traces, labs). Reads the models through their
public faces only."""
__version__ = "0.1.0"
