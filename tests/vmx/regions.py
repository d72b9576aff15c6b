"""Physical addresses of the VMXON region and VMCS regions the VMX tests use."""
VMXON_REGION = 0x10000
VMCS_A = 0x11000
VMCS_B = 0x12000
