"""Decode x86 machine code with iced-x86 into the compact records the interpreter runs.

Each instruction becomes one tuple of plain integers (see `FIELDS`), which the core copies into
its C record (`Insn` in `_defs.pxd`). Decoding happens once per physical code location; the
interpreter never calls back here for code it has already seen.

Operands are described position by position: kind (`K_*`), register byte offset into the
register file, one memory operand (base, index, scale, displacement, segment, address size)
and up to two immediates. Branch targets are stored relative to the next instruction so that a
decoded block stays valid wherever the same physical page is mapped.
"""
from __future__ import annotations

import iced_x86 as ix

# operand kinds, mirrored from _defs.pxd
K_NONE, K_REG, K_MEM, K_IMM, K_SREG, K_CR, K_DR = range(7)
P_LOCK, P_REP, P_REPNE = 1, 2, 4
NOREG, RIPREG = 0xFF, 0xFE

# pseudo-mnemonics for forms that iced files under an ordinary mnemonic (MOV)
PSEUDO_BASE = 1990
MOV_SREG = PSEUDO_BASE + 0      # MOV Sreg, r/m16 (SDM Vol. 2B MOV)
MOV_FROM_SREG = PSEUDO_BASE + 1
MOV_TO_CR = PSEUDO_BASE + 2     # MOV CRn, r64 (SDM Vol. 2B "MOV - Move to/from Control Registers")
MOV_FROM_CR = PSEUDO_BASE + 3
MOV_TO_DR = PSEUDO_BASE + 4
MOV_FROM_DR = PSEUDO_BASE + 5
INVALID = PSEUDO_BASE + 6       # undefined opcode: #UD
UNMODELLED = PSEUDO_BASE + 7    # decoded, not modelled: x86.Unsupported naming it (imm = mnemonic)
FAR_JMP = PSEUDO_BASE + 8       # JMP ptr16:32 / m16:32 (SDM Vol. 2A JMP)
FAR_CALL = PSEUDO_BASE + 9
NMNEM = 2048

FIELDS = ("mnem", "code", "len", "osz", "ssz", "asz", "k0", "k1", "k2", "r0", "r1", "r2",
          "base", "index", "scale", "seg", "cond", "pfx", "nops", "disp", "imm", "imm2", "ends")

_R = ix.Register
_OK = ix.OpKind
_M = ix.Mnemonic


def _register_table() -> dict[int, tuple[int, int, int]]:
    """iced Register -> (operand kind, value, size). GPR values are byte offsets in the register file."""
    t: dict[int, tuple[int, int, int]] = {}
    low8 = ["AL", "CL", "DL", "BL"]
    for i, n in enumerate(low8):
        t[getattr(_R, n)] = (K_REG, i * 8, 1)
    for i, n in enumerate(["AH", "CH", "DH", "BH"]):
        t[getattr(_R, n)] = (K_REG, i * 8 + 1, 1)          # bits 15:8 of RAX..RBX
    for i, n in enumerate(["SPL", "BPL", "SIL", "DIL"]):
        t[getattr(_R, n)] = (K_REG, (i + 4) * 8, 1)
    for i in range(8, 16):
        t[getattr(_R, f"R{i}L")] = (K_REG, i * 8, 1)
    names16 = ["AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI"]
    for i, n in enumerate(names16):
        t[getattr(_R, n)] = (K_REG, i * 8, 2)
        t[getattr(_R, "E" + n)] = (K_REG, i * 8, 4)
        t[getattr(_R, "R" + n)] = (K_REG, i * 8, 8)
    for i in range(8, 16):
        t[getattr(_R, f"R{i}W")] = (K_REG, i * 8, 2)
        t[getattr(_R, f"R{i}D")] = (K_REG, i * 8, 4)
        t[getattr(_R, f"R{i}")] = (K_REG, i * 8, 8)
    for i, n in enumerate(["ES", "CS", "SS", "DS", "FS", "GS"]):
        t[getattr(_R, n)] = (K_SREG, i, 2)
    for i in range(16):
        t[_R.CR0 + i] = (K_CR, i, 8)
        t[_R.DR0 + i] = (K_DR, i, 8)
    return t


REGS = _register_table()
# base/index register number (0-15) and width, for address computation
ADDR_REGS = {r: (v[1] // 8, v[2]) for r, v in REGS.items() if v[0] == K_REG and v[2] >= 2}
SEG_NUM = {getattr(_R, n): i for i, n in enumerate(["ES", "CS", "SS", "DS", "FS", "GS"])}

_STRING_ADDR = {
    _OK.MEMORY_SEG_SI: (6, 2), _OK.MEMORY_SEG_ESI: (6, 4), _OK.MEMORY_SEG_RSI: (6, 8),
    _OK.MEMORY_SEG_DI: (7, 2), _OK.MEMORY_SEG_EDI: (7, 4), _OK.MEMORY_SEG_RDI: (7, 8),
    _OK.MEMORY_ESDI: (7, 2), _OK.MEMORY_ESEDI: (7, 4), _OK.MEMORY_ESRDI: (7, 8),
}
_IMM = {_OK.IMMEDIATE8, _OK.IMMEDIATE16, _OK.IMMEDIATE32, _OK.IMMEDIATE64, _OK.IMMEDIATE8TO16,
        _OK.IMMEDIATE8TO32, _OK.IMMEDIATE8TO64, _OK.IMMEDIATE32TO64}
_NEAR = {_OK.NEAR_BRANCH16: 2, _OK.NEAR_BRANCH32: 4, _OK.NEAR_BRANCH64: 8}
_FAR = {_OK.FAR_BRANCH16: 2, _OK.FAR_BRANCH32: 4}

# A block ends at every control transfer and after the instructions below, which may change
# the mode, the mapping of the code, or interrupt delivery (most of their handlers also return
# REDECODE, which leaves the block at once; this list keeps the decoded blocks honest too).
BLOCK_ENDERS = {getattr(_M, n) for n in (
    "LGDT", "LIDT", "LLDT", "LTR", "LMSW", "CLTS", "WRMSR", "CLI", "STI", "POPF", "POPFD",
    "POPFQ", "HLT", "INVLPG", "INVPCID", "SWAPGS", "XSETBV", "RSM", "LSS", "LDS", "LES",
    "LFS", "LGS", "MWAIT", "UD0", "UD1", "UD2", "SYSENTER", "SYSEXIT",
    "VMXON", "VMXOFF", "VMCLEAR", "VMPTRLD", "VMPTRST", "VMREAD", "VMWRITE", "VMLAUNCH",
    "VMRESUME", "VMCALL", "VMFUNC", "INVEPT", "INVVPID", "VMRUN", "VMLOAD", "VMSAVE", "STGI",
    "CLGI", "SKINIT", "INVLPGA", "VMMCALL", "GETSEC",
)}
MAX_BLOCK = 64
_LOAD_FAR = {_M.LDS, _M.LES, _M.LFS, _M.LGS, _M.LSS}


def _prefix_bytes(data: bytes, bits: int) -> tuple[int, ...]:
    out = []
    for b in data[:15]:
        if b in (0xF0, 0xF2, 0xF3, 0x2E, 0x36, 0x3E, 0x26, 0x64, 0x65, 0x66, 0x67):
            out.append(b)
        elif bits == 64 and 0x40 <= b <= 0x4F:
            continue
        else:
            break
    return tuple(out)


def _size_of_register(reg: int) -> int:
    return REGS.get(reg, (0, 0, 0))[2]


def convert(ins: ix.Instruction, raw: bytes, bits: int) -> tuple:
    """One iced instruction -> the record tuple (FIELDS order)."""
    mnem = ins.mnemonic
    code = ins.code
    n = ins.op_count
    kinds = [K_NONE, K_NONE, K_NONE]
    regs = [0, 0, 0]
    sizes = [0, 0, 0]
    base = index = NOREG
    scale = 0
    seg = 3          # DS
    disp = 0
    imm = 0
    imm2 = 0
    prefixes = _prefix_bytes(raw, bits)
    asz = {16: 2, 32: 4, 64: 8}[bits]
    if 0x67 in prefixes:
        asz = {2: 4, 4: 2, 8: 4}[asz]
    imm_seen = 0
    msize = ix.MemorySizeInfo(ins.memory_size).size if ins.memory_size else 0
    for k in range(min(n, 3)):
        ok = ins.op_kind(k)
        if ok == _OK.REGISTER:
            r = ins.op_register(k)
            if r not in REGS:
                raise NotImplementedError(f"register {r} in {ins}")
            kinds[k], regs[k], sizes[k] = REGS[r]
        elif ok == _OK.MEMORY:
            kinds[k] = K_MEM
            sizes[k] = msize
            seg = SEG_NUM.get(ins.memory_segment, 3)
            if ins.memory_base == _R.RIP or ins.memory_base == _R.EIP:
                base = RIPREG
                disp = (ins.memory_displacement - ins.next_ip) & 0xFFFFFFFFFFFFFFFF
                if ins.memory_base == _R.EIP:
                    asz = 4
            else:
                if ins.memory_base != _R.NONE:
                    base, w = ADDR_REGS[ins.memory_base]
                    asz = w
                if ins.memory_index == _R.AL:
                    pass     # XLAT: [rBX + AL], computed by its handler (SDM Vol. 2B XLAT)
                elif ins.memory_index != _R.NONE:
                    index, w = ADDR_REGS[ins.memory_index]
                    asz = w
                    scale = {1: 0, 2: 1, 4: 2, 8: 3}[ins.memory_index_scale]
                disp = ins.memory_displacement & 0xFFFFFFFFFFFFFFFF
        elif ok in _STRING_ADDR:
            kinds[k] = K_MEM
            base, asz = _STRING_ADDR[ok]
            sizes[k] = msize
            if ok in (_OK.MEMORY_SEG_SI, _OK.MEMORY_SEG_ESI, _OK.MEMORY_SEG_RSI,
                      _OK.MEMORY_SEG_DI, _OK.MEMORY_SEG_EDI, _OK.MEMORY_SEG_RDI):
                seg = SEG_NUM.get(ins.memory_segment, 3)
        elif ok in _IMM:
            kinds[k] = K_IMM
            v = ins.immediate(k) & 0xFFFFFFFFFFFFFFFF
            if imm_seen:
                imm2 = v
            else:
                imm = v
            imm_seen += 1
        elif ok == _OK.IMMEDIATE8_2ND:
            kinds[k] = K_IMM
            imm2 = ins.immediate8_2nd
        elif ok in _NEAR:
            kinds[k] = K_IMM
            sizes[k] = _NEAR[ok]
            imm = (ins.near_branch_target - ins.next_ip) & 0xFFFFFFFFFFFFFFFF
        elif ok in _FAR:
            kinds[k] = K_IMM
            sizes[k] = _FAR[ok]
            imm = ins.far_branch32 if ok == _OK.FAR_BRANCH32 else ins.far_branch16
            imm2 = ins.far_branch_selector
    osz = sizes[0] or ix.OpCodeInfo(code).operand_size // 8 or sizes[1] or msize
    ssz = sizes[1] or osz
    if mnem == _M.MOV:
        if kinds[0] == K_SREG:
            mnem = MOV_SREG
            osz = 2
        elif kinds[1] == K_SREG:
            mnem = MOV_FROM_SREG
        elif kinds[0] == K_CR:
            mnem = MOV_TO_CR
        elif kinds[1] == K_CR:
            mnem = MOV_FROM_CR
        elif kinds[0] == K_DR:
            mnem = MOV_TO_DR
        elif kinds[1] == K_DR:
            mnem = MOV_FROM_DR
    if mnem == _M.JMP and (ins.is_jmp_far or ins.is_jmp_far_indirect):
        mnem = FAR_JMP
    elif mnem == _M.CALL and (ins.is_call_far or ins.is_call_far_indirect):
        mnem = FAR_CALL
    if mnem in (FAR_JMP, FAR_CALL) or (ins.mnemonic == _M.LSS or ins.mnemonic in _LOAD_FAR):
        if kinds[0] == K_MEM:
            osz = msize - 2          # m16:16, m16:32, m16:64: the offset's size
        elif ins.op_count == 2 and kinds[1] == K_MEM:
            ssz = msize - 2
    pfx = 0
    if ins.has_lock_prefix:
        pfx |= P_LOCK
    if ins.has_rep_prefix or ins.has_repe_prefix:
        pfx |= P_REP
    if ins.has_repne_prefix:
        pfx |= P_REPNE
    cond = int(ins.condition_code) - 1 if ins.condition_code else 0
    ends = ins.flow_control != ix.FlowControl.NEXT or ins.mnemonic in BLOCK_ENDERS \
        or mnem in (MOV_SREG, MOV_TO_CR, MOV_TO_DR) or (mnem == _M.POP and kinds[0] == K_SREG) \
        or (pfx & (P_REP | P_REPNE) and ins.is_string_instruction)
    return (mnem, code, ins.len, osz or 0, ssz or 0, asz, kinds[0], kinds[1], kinds[2],
            regs[0], regs[1], regs[2], base, index, scale, seg, _CC_MAP[cond] if ins.condition_code else 0,
            pfx, n, disp, imm, imm2, int(bool(ends)))


# iced ConditionCode (o, no, b, ae, e, ne, be, a, s, ns, p, np, l, ge, le, g) in order from 1;
# the SDM's cc encoding (Vol. 2 Appendix B.1.4.7) is the same order from 0.
_CC_MAP = list(range(16))


def invalid_record(length: int = 1) -> tuple:
    return (INVALID, 0, max(1, length), 0, 0, 8, 0, 0, 0, 0, 0, 0, NOREG, NOREG, 0, 3, 0, 0, 0, 0, 0, 0, 1)


NO_MORE_BYTES = int(ix.DecoderError.NO_MORE_BYTES)


def decode_block(data: bytes, ip: int, bits: int, max_insns: int = MAX_BLOCK):
    """Decode from the start of `data` until a block ender, `max_insns`, or the end of `data`.

    Returns (records, truncated): `truncated` is true when the next instruction did not fit in
    `data` (it crosses into bytes the caller did not supply)."""
    dec = ix.Decoder(bits, data, ip=ip)
    out = []
    pos = 0
    while pos < len(data) and len(out) < max_insns:
        ins = dec.decode()
        if ins.code == ix.Code.INVALID:
            if dec.last_error == NO_MORE_BYTES:
                return out, True
            out.append(invalid_record())
            break
        raw = data[pos:pos + ins.len]
        try:
            rec = convert(ins, raw, bits)
        except NotImplementedError:
            rec = list(invalid_record(ins.len))
            rec[0], rec[20] = UNMODELLED, int(ins.mnemonic)
            rec = tuple(rec)
        out.append(rec)
        pos += ins.len
        if rec[-1]:
            break
    return out, False


def mnemonic_name(mnem: int) -> str:
    for name, value in _PSEUDO_NAMES.items():
        if value == mnem:
            return name
    return _MNEMONIC_NAMES.get(mnem, f"mnemonic {mnem}")


_PSEUDO_NAMES = {"far JMP": FAR_JMP, "far CALL": FAR_CALL, "MOV Sreg": MOV_SREG, "MOV from Sreg": MOV_FROM_SREG, "MOV to CR": MOV_TO_CR,
                 "MOV from CR": MOV_FROM_CR, "MOV to DR": MOV_TO_DR, "MOV from DR": MOV_FROM_DR,
                 "(invalid opcode)": INVALID}
_MNEMONIC_NAMES = {getattr(_M, n): n for n in dir(_M) if n.isupper()}
