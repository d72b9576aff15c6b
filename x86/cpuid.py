"""CPUID leaves of the bare processor (SDM Vol. 2A CPUID, Tables 3-8 to 3-22), as data.

Only features with behaviour in the model are advertised; vmx and svm add their bits.
"""
from __future__ import annotations

# CPUID.01H:ECX / EDX bits
ECX1 = {"MONITOR": 3, "VMX": 5, "CX16": 13, "PCID": 17, "X2APIC": 21, "XSAVE": 26, "OSXSAVE": 27, "RDRAND": 30}
EDX1 = {"DE": 2, "PSE": 3, "TSC": 4, "MSR": 5, "PAE": 6, "MCE": 7, "CX8": 8, "APIC": 9, "PGE": 13,
        "CMOV": 15, "PAT": 16, "PSE36": 17}
EBX7 = {"SMEP": 7, "INVPCID": 10, "RDSEED": 18, "SMAP": 20}
ECX7 = {"UMIP": 2, "LA57": 16}
EDX81 = {"SYSCALL": 11, "NX": 20, "PAGE1GB": 26, "RDTSCP": 27, "LM": 29}
ECX81 = {"LAHF_LM": 0, "SVM": 2}


# CPUID.0AH, the architectural performance-monitoring leaf (SDM Vol. 2A CPUID, Vol. 3B 21.2):
# version 2, so that IA32_PERF_GLOBAL_CTRL (38FH) exists, with no general-purpose and no
# fixed-function counters (RDPMC has none to read). The MSR's bits that enable counters are
# then all reserved (Vol. 3B Figure 21-3): bit n < GP counters, bit 32 + n < fixed counters.
PERFMON_VERSION, PERFMON_GP_COUNTERS, PERFMON_FIXED_COUNTERS = 2, 0, 0
PERF_GLOBAL_CTRL_VALID = ((1 << PERFMON_GP_COUNTERS) - 1) | (((1 << PERFMON_FIXED_COUNTERS) - 1) << 32)


def bits(table: dict[str, int], names) -> int:
    return sum(1 << table[n] for n in names)


DEFAULT_FEATURES = {
    "ecx1": ("MONITOR", "CX16", "PCID", "X2APIC", "XSAVE", "RDRAND"),
    "edx1": tuple(EDX1),
    "ebx7": tuple(EBX7),
    "ecx7": tuple(ECX7),
    "edx81": tuple(EDX81),
    "ecx81": ("LAHF_LM",),
}


class CpuidTable:
    """The leaves one processor answers; `extra` lets vmx/svm add feature bits."""

    def __init__(self, features=None, vendor: str = "GenuineIntel", signature: int = 0x000906EA):
        f = dict(DEFAULT_FEATURES)
        f.update(features or {})
        self.features = f
        self.vendor = vendor
        self.signature = signature

    def _vendor_regs(self):
        b = self.vendor.encode()
        return [int.from_bytes(b[i:i + 4], "little") for i in (0, 8, 4)]   # EBX, ECX, EDX order

    def query(self, leaf: int, subleaf: int, cr4: int = 0) -> tuple[int, int, int, int]:
        f = self.features
        if leaf == 0:
            ebx, ecx, edx = self._vendor_regs()
            return 0x0D, ebx, ecx, edx
        if leaf == 1:
            ecx = bits(ECX1, f["ecx1"])
            if cr4 & (1 << 18):
                ecx |= 1 << ECX1["OSXSAVE"]
            return self.signature, (1 << 16) | (8 << 8), ecx, bits(EDX1, f["edx1"])
        if leaf == 7 and subleaf == 0:
            return 0, bits(EBX7, f["ebx7"]), bits(ECX7, f["ecx7"]), 0
        if leaf == 0xA:
            return PERFMON_VERSION | (PERFMON_GP_COUNTERS << 8), 0, 0, PERFMON_FIXED_COUNTERS
        if leaf == 0xD and subleaf == 0:
            return 0x3, 576, 576, 0            # XCR0 may enable x87 and SSE state only
        if leaf == 0x80000000:
            ebx, ecx, edx = self._vendor_regs()
            return 0x80000008, 0, 0, 0
        if leaf == 0x80000001:
            return 0, 0, bits(ECX81, f["ecx81"]), bits(EDX81, f["edx81"])
        if leaf == 0x80000008:
            from x86 import MAXPHYADDR
            linear = 57 if "LA57" in f["ecx7"] else 48
            return (linear << 8) | MAXPHYADDR, 0, 0, 0
        return 0, 0, 0, 0

    def has(self, name: str) -> bool:
        return any(name in v for v in self.features.values())

    def cr4_valid(self) -> int:
        """CR4 bits supported by the advertised features (others are reserved, SDM 2.5)."""
        m = (1 << 2) | (1 << 3) | (1 << 6) | (1 << 8)          # TSD DE MCE PCE
        m |= (1 << 4) | (1 << 5) | (1 << 7)                    # PSE PAE PGE
        for name, bit in (("UMIP", 11), ("LA57", 12), ("VMX", 13), ("PCID", 17), ("XSAVE", 18),
                          ("SMEP", 20), ("SMAP", 21)):
            if self.has(name):
                m |= 1 << bit
        return m

    def efer_valid(self) -> int:
        m = (1 << 0) | (1 << 8) | (1 << 10)                    # SCE LME LMA
        if self.has("NX"):
            m |= 1 << 11
        if self.has("SVM"):
            m |= 1 << 12
        return m
