"""The interpreter against unicorn on unprivileged instructions in 64-bit mode.

SDM Vol. 2A/2B, each instruction's "Operation" and "Flags Affected" sections: the tests compare
every general-purpose register, the memory the snippet can touch and RFLAGS masked to the bits the
manual defines for that instruction ("the AF flag is undefined" after a logical operation, "the OF
flag is affected only for single-bit shifts", "SF, ZF, AF and PF are undefined" after MUL/IMUL,
"the CF, OF, SF, ZF, AF and PF flags are undefined" after DIV/IDIV, ...). Operand values come from
hypothesis; each case is: registers set, the snippet, ``hlt``. An instruction that raises #DE
(SDM Vol. 2A DIV: "IF SRC = 0 THEN #DE; ... IF temp > FFH THEN #DE") must fault on both: unicorn
reports UC_ERR_EXCEPTION, the simulator with an empty IDT shuts down.
"""
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

pytest.importorskip("unicorn")

import diffutil as D  # noqa: E402
from diffutil import ALL, ARITH, AF, CF, DF, OF, ZF, check_unicorn  # noqa: E402

FEW = settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
SOME = settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))

# --- ADD ADC SUB SBB CMP AND OR XOR TEST (SDM Vol. 2A/2B, Flags Affected) --------------------

ARITH_OPS = ["add", "adc", "sub", "sbb", "cmp"]
LOGIC_OPS = ["and", "or", "xor", "test"]          # OF = CF = 0; AF undefined
BINARY_FORMS = [
    "al, bl", "ah, ch", "dh, bh", "sil, r9b", "cx, dx", "ecx, edx", "rcx, rdx", "r8, r8",
    "al, 0x7f", "bh, 0x80", "ax, 0x1234", "esi, -5", "eax, 0x7fffffff", "r10, -0x12345678",
    "dword ptr [r15 + 8], esi", "rdx, qword ptr [r15 - 8]", "byte ptr [r15], dl",
    "word ptr [r15 - 2], 0x1234", "qword ptr [r15 + 16], -1",
]


@pytest.mark.parametrize("form", BINARY_FORMS)
@pytest.mark.parametrize("op", ARITH_OPS + LOGIC_OPS)
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_binary(op, form, regs, rflags, window):
    """ADD..TEST: OF SF ZF AF CF PF set according to the result; AND/OR/XOR/TEST clear OF and CF
    and leave AF undefined."""
    mask = ALL if op in ARITH_OPS else ALL & ~AF
    check_unicorn(f"{op} {form}", regs, rflags, window, mask)


# --- INC DEC NEG NOT -------------------------------------------------------------------------

UNARY_FORMS = ["al", "ah", "bx", "ecx", "rdx", "r9b", "r12d", "byte ptr [r15]",
               "word ptr [r15 - 1]", "dword ptr [r15 - 4]", "qword ptr [r15 + 8]"]


@pytest.mark.parametrize("form", UNARY_FORMS)
@pytest.mark.parametrize("op", ["inc", "dec", "neg", "not"])
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_unary(op, form, regs, rflags, window):
    """INC/DEC: "The CF flag is not affected"; NEG: "CF is set to 0 if the source operand is 0;
    otherwise 1"; NOT: "None" (every flag preserved)."""
    check_unicorn(f"{op} {form}", regs, rflags, window, ALL)


# --- shifts and rotates (SDM Vol. 2B SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD, SHRD) ------------

SHIFTS = ["shl", "shr", "sar", "rol", "ror", "rcl", "rcr"]
SHIFT_DESTS = [("al", 8), ("bh", 8), ("dx", 16), ("esi", 32), ("r9", 64),
               ("byte ptr [r15]", 8), ("word ptr [r15 - 2]", 16), ("dword ptr [r15]", 32),
               ("qword ptr [r15 + 8]", 64)]
COUNTS = st.integers(0, 70)


def shift_mask(op: str, bits: int, count: int) -> int:
    """Flags Affected: "If the count is 0, the flags are not affected." Otherwise OF only for a
    1-bit shift; shifts: AF undefined, "CF is undefined for SHL and SHR where the count is
    greater than or equal to the size of the destination"; rotates change only CF and OF."""
    masked = count & (0x3F if bits == 64 else 0x1F)
    if masked == 0:
        return ALL
    mask = ALL
    if masked != 1:
        mask &= ~OF
    if op in ("shl", "shr", "sar"):
        mask &= ~AF
        if op != "sar" and masked >= bits:
            mask &= ~CF
    return mask


@pytest.mark.parametrize("dest,bits", SHIFT_DESTS)
@pytest.mark.parametrize("op", SHIFTS)
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem, count=COUNTS, by_cl=st.booleans())
def test_shift_rotate(op, dest, bits, regs, rflags, window, count, by_cl):
    if by_cl:
        regs["rcx"] = (regs["rcx"] & ~0xFF) | count
        src = f"{op} {dest}, cl"
    else:
        src = f"{op} {dest}, {count}"
    check_unicorn(src, regs, rflags, window, shift_mask(op, bits, count))


@pytest.mark.parametrize("op", SHIFTS)
@FEW
@given(regs=D.regs, rflags=D.flags)
def test_shift_by_one(op, regs, rflags):
    """The D0/D1 forms (count 1): OF is defined."""
    check_unicorn(f"{op} ecx, 1\n{op} bl, 1", regs, rflags, b"", shift_mask(op, 8, 1))


DOUBLE_FORMS = [("ax, bx", 16), ("edx, esi", 32), ("r8, r9", 64), ("dword ptr [r15], esi", 32),
                ("qword ptr [r15 - 8], rdx", 64), ("word ptr [r15], di", 16)]


@pytest.mark.parametrize("form,bits", DOUBLE_FORMS)
@pytest.mark.parametrize("op", ["shld", "shrd"])
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem, count=COUNTS, by_cl=st.booleans())
def test_double_shift(op, form, bits, regs, rflags, window, count, by_cl):
    """SHLD/SHRD: "If the count is greater than the operand size, the result is undefined" (only
    possible at 16 bits); OF defined for 1-bit shifts; AF undefined."""
    masked = count & (0x3F if bits == 64 else 0x1F)
    assume(masked <= bits)
    if by_cl:
        regs["rcx"] = (regs["rcx"] & ~0xFF) | count
        src = f"{op} {form}, cl"
    else:
        src = f"{op} {form}, {count}"
    mask = ALL if masked == 0 else ALL & ~AF & (~OF if masked != 1 else ALL)
    check_unicorn(src, regs, rflags, window, mask)


# --- MUL IMUL DIV IDIV (SDM Vol. 2A) ---------------------------------------------------------

MUL_FORMS = ["bl", "ah", "cx", "esi", "r10", "byte ptr [r15 - 1]", "word ptr [r15]",
             "dword ptr [r15 + 4]", "qword ptr [r15]"]


@pytest.mark.parametrize("form", MUL_FORMS)
@pytest.mark.parametrize("op", ["mul", "imul"])
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_mul_one_operand(op, form, regs, rflags, window):
    """MUL/IMUL r/m: "The OF and CF flags are set to 0 if the upper half of the result is 0
    [is the sign extension of the lower half]; otherwise 1. SF, ZF, AF, PF are undefined." """
    check_unicorn(f"{op} {form}", regs, rflags, window, CF | OF | DF)


IMUL_FORMS = ["cx, dx", "esi, edi", "r9, r10", "rdx, qword ptr [r15 - 8]", "ax, word ptr [r15]",
              "cx, bx, -3", "r11, r12, 0x12345678", "esi, edi, 0x80", "eax, dword ptr [r15], 7",
              "r8w, r9w, 0x7fff", "rax, rax, -1"]


@pytest.mark.parametrize("form", IMUL_FORMS)
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_imul_two_three_operands(form, regs, rflags, window):
    """IMUL r, r/m [, imm]: "CF and OF set when the result must be truncated to fit"."""
    check_unicorn(f"imul {form}", regs, rflags, window, CF | OF | DF)


DIV_FORMS = ["bl", "ah", "cx", "esi", "r10", "byte ptr [r15]", "word ptr [r15 - 2]",
             "dword ptr [r15]", "qword ptr [r15 + 8]"]
small = st.one_of(st.sampled_from([0, 1, 2**64 - 1, 2**63]), st.integers(0, 0xFF), D.u64)


@pytest.mark.parametrize("form", DIV_FORMS)
@pytest.mark.parametrize("op", ["div", "idiv"])
@SOME
@given(regs=D.regs, rflags=D.flags, window=D.mem, rdx=small)
def test_divide(op, form, regs, rflags, window, rdx):
    """DIV/IDIV: quotient and remainder; #DE for a zero divisor or a quotient too large for the
    destination, on the same inputs; "The CF, OF, SF, ZF, AF, and PF flags are undefined." """
    regs["rdx"] = rdx
    check_unicorn(f"{op} {form}", regs, rflags, window, DF)


DE_CASES = [
    ("div bl", {"rax": 5, "rbx": 0}), ("div rcx", {"rdx": 1, "rax": 0, "rcx": 1}),
    ("div bl", {"rax": 0x100, "rbx": 1}), ("idiv bl", {"rax": 0xFF80, "rbx": 0xFF}),
    ("idiv cx", {"rdx": 0xFFFF, "rax": 0x8000, "rcx": 0xFFFF}),
    ("idiv ecx", {"rdx": 0xFFFFFFFF, "rax": 0x80000000, "rcx": 0xFFFFFFFF}),
    ("idiv rcx", {"rdx": 2**64 - 1, "rax": 2**63, "rcx": 2**64 - 1}),
    ("idiv rcx", {"rdx": 0, "rax": 2**63, "rcx": 1}),
    ("idiv rcx", {"rdx": 2**64 - 1, "rax": 2**63, "rcx": 1}),      # -2**63 / 1: fits
    ("idiv bl", {"rax": 0xFF7F, "rbx": 1}),                          # -129 / 1: #DE
    ("idiv bl", {"rax": 0x0080, "rbx": 0xFF}),                       # 128 / -1 = -128: fits
]


@pytest.mark.parametrize("src,regs", DE_CASES)
def test_divide_error_edges(src, regs):
    """SDM Vol. 2A IDIV: "IF (temp > 7FH) or (temp < 80H) THEN #DE" (and the wider forms)."""
    check_unicorn(src, dict(regs), 0, b"", DF)


# --- bit test and scan (SDM Vol. 2A BT, BTS, BTR, BTC, BSF, BSR) -----------------------------

BT_REG_FORMS = ["ax, cx", "esi, edx", "r9, r10", "ecx, 37", "bx, 19", "r11, 63"]
BT_MEM_IMM = ["word ptr [r15], 19", "dword ptr [r15 - 4], 0x45", "qword ptr [r15], 63"]
BT_MEM_REG = [("word ptr [r15], cx", 16), ("dword ptr [r15 + 4], edx", 32),
              ("qword ptr [r15 - 8], r10", 64)]
BT_FLAGS = CF | ZF | DF           # "The ZF flag is unaffected. The OF, SF, AF, and PF flags are undefined."


@pytest.mark.parametrize("form", BT_REG_FORMS + BT_MEM_IMM)
@pytest.mark.parametrize("op", ["bt", "bts", "btr", "btc"])
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_bit_test(op, form, regs, rflags, window):
    """BT*: "CF ← Bit(BitBase, BitOffset)"; a register or immediate offset is taken modulo the
    operand size when the bit base is a register or the offset an immediate."""
    check_unicorn(f"{op} {form}", regs, rflags, window, BT_FLAGS)


@pytest.mark.parametrize("form,bits", BT_MEM_REG)
@pytest.mark.parametrize("op", ["bt", "bts", "btr", "btc"])
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem, offset=st.integers(-0x7E00, 0x7E00))
def test_bit_string(op, form, bits, regs, rflags, window, offset):
    """BT* m, r: "the bit offset ... can range from -2**63 to 2**63 - 1": the operand addresses a
    bit string (negative offsets reach below the base)."""
    if bits == 16:
        offset = max(-0x8000, min(0x7FFF, offset))
    reg = {"cx": "rcx", "edx": "rdx", "r10": "r10"}[form.split(", ")[1]]
    regs[reg] = offset & (2**64 - 1)
    check_unicorn(f"{op} {form}", regs, rflags, window, BT_FLAGS)


SCAN_FORMS = [("ax, cx", "rcx", 16), ("esi, edx", "rdx", 32), ("r9, r10", "r10", 64),
              ("edx, dword ptr [r15]", None, 32)]


@pytest.mark.parametrize("form,srcreg,bits", SCAN_FORMS)
@pytest.mark.parametrize("op", ["bsf", "bsr"])
@SOME
@given(regs=D.regs, rflags=D.flags, window=D.mem, zero=st.booleans(), bit=st.integers(0, 63))
def test_bit_scan(op, form, srcreg, bits, regs, rflags, window, zero, bit):
    """BSF/BSR: "The ZF flag is set to 1 if the source operand is 0; otherwise cleared. The CF,
    OF, SF, AF, and PF flags are undefined"; "If the content of the source operand is 0, the
    content of the destination operand is undefined"."""
    if srcreg and (zero or bit < bits):
        regs[srcreg] = 0 if zero else (regs[srcreg] & ~((1 << bit) - 1) | (1 << bit)) & (2**64 - 1)
    ref_src = regs[srcreg] & ((1 << bits) - 1) if srcreg else \
        int.from_bytes(D.initial_memory(window)[D.R15 - D.DATA:][:4], "little")
    dest = {"ax": "rax", "esi": "rsi", "r9": "r9", "edx": "rdx"}[form.split(",")[0]]
    check_unicorn(f"{op} {form}", regs, rflags, window, ZF | DF,
                  ignore_regs=(dest,) if ref_src == 0 else ())


# --- data movement (SDM Vol. 2A/2B BSWAP, XCHG, XADD, CMPXCHG, MOVZX, MOVSX, CBW..CQO) -------

MOVE_FORMS = [
    "bswap eax", "bswap r9", "bswap rdx",
    "xchg al, ah", "xchg bx, cx", "xchg esi, edi", "xchg eax, eax", "xchg r8, rax",
    "xchg dword ptr [r15], edx", "xchg cl, byte ptr [r15 - 1]", "xchg ax, r9w",
    "movzx eax, bl", "movzx cx, ah", "movzx rdx, word ptr [r15]", "movzx r11d, r12b",
    "movsx esi, dh", "movsx r9, r10w", "movsx cx, byte ptr [r15 - 1]", "movsx rax, bl",
    "movsxd rax, ecx", "movsxd r8, dword ptr [r15]",
    "cbw", "cwde", "cdqe", "cwd", "cdq", "cqo",
    "mov ah, bl", "mov ecx, edx", "mov rax, 0x123456789abcdef0", "mov byte ptr [r15], bl",
    "mov dx, word ptr [r15 - 2]", "lahf", "sahf", "clc", "stc", "cmc", "cld", "std",
]


@pytest.mark.parametrize("src", MOVE_FORMS)
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_data_movement(src, regs, rflags, window):
    """"Flags Affected: None" for the moves (every flag preserved); a 32-bit destination is
    zero-extended to 64 bits (SDM Vol. 1 3.4.1.1); LAHF/SAHF move SF ZF AF PF CF through AH."""
    check_unicorn(src, regs, rflags, window, ALL)


XADD_FORMS = ["al, bl", "cx, dx", "esi, edi", "r9, r10", "qword ptr [r15], rcx",
              "byte ptr [r15 - 1], bl", "eax, eax", "r8d, r8d"]


@pytest.mark.parametrize("form", XADD_FORMS)
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_xadd(form, regs, rflags, window):
    """XADD: "TEMP ← SRC + DEST; SRC ← DEST; DEST ← TEMP" (the destination is written last, so
    XADD r, r with one register leaves the sum)."""
    check_unicorn(f"xadd {form}", regs, rflags, window, ALL)


CMPXCHG_FORMS = [("bl, cl", "rbx", 1), ("dx, si", "rdx", 2), ("esi, edi", "rsi", 4),
                 ("r9, r10", "r9", 8), ("qword ptr [r15], rcx", None, 8),
                 ("dword ptr [r15], ecx", None, 4), ("ah, bh", "rax", 1)]


@pytest.mark.parametrize("form,dest,size", CMPXCHG_FORMS)
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem, equal=st.booleans())
def test_cmpxchg(form, dest, size, regs, rflags, window, equal):
    """CMPXCHG: "IF accumulator = DEST THEN ZF ← 1; DEST ← SRC ELSE ZF ← 0; accumulator ← DEST";
    the other flags as for CMP."""
    if equal:
        if dest is None:
            v = int.from_bytes(D.initial_memory(window)[D.R15 - D.DATA:][:size], "little")
        else:
            v = regs[dest]
        m = (1 << 8 * size) - 1
        regs["rax"] = (regs["rax"] & ~m) | (v & m)
    if size == 4:
        # unicorn (QEMU) zero-extends RAX and a register destination on every 32-bit CMPXCHG;
        # hardware writes only what the comparison selects (checked natively: equal leaves
        # RAX[63:32], a failed compare leaves the register destination). Keep the upper halves
        # zero so the reference's deviation cannot show; test_cmpxchg_upper_halves checks them.
        for r in ("rax", dest):
            if r:
                regs[r] &= 0xFFFFFFFF
    check_unicorn(f"cmpxchg {form}", regs, rflags, window, ALL)


def test_cmpxchg_upper_halves():
    """32-bit CMPXCHG writes EAX only when the comparison fails and the destination only when
    it succeeds (memory destinations are always written back): bits 63:32 of a register that is
    not written keep their value, as measured on hardware."""
    import x86
    from x86.asm import assemble
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble("""
        cmpxchg esi, edi        # equal: ESI <- EDI (zero-extended), RAX untouched
        mov r8, rax
        mov r9, rsi
        mov rax, r10
        mov rsi, r11
        cmpxchg esi, edi        # not equal: EAX <- ESI (zero-extended), RSI untouched
        hlt
    """, address=0x100000), address=0x100000)
    m.cpu.rax, m.cpu.rsi, m.cpu.rdi = 0xFFFFFFFF00000000, 0x100000000, 7
    m.cpu.r10, m.cpu.r11 = 0, 0x100000001
    m.cpu.run()
    assert (m.cpu.r8, m.cpu.r9) == (0xFFFFFFFF00000000, 7)
    assert (m.cpu.rax, m.cpu.rsi) == (1, 0x100000001)


# --- SETcc, CMOVcc (SDM Vol. 1 Appendix B, Table B-1) -----------------------------------------

CONDITIONS = ["o", "no", "b", "ae", "e", "ne", "be", "a", "s", "ns", "p", "np", "l", "ge", "le", "g"]
CC_FORMS = ["set{} al", "set{} ah", "set{} byte ptr [r15]", "cmov{} ecx, edx", "cmov{} si, di",
            "cmov{} r9, qword ptr [r15]"]


@pytest.mark.parametrize("form", CC_FORMS)
@pytest.mark.parametrize("cc", CONDITIONS)
@FEW
@given(regs=D.regs, rflags=D.flags, window=D.mem)
def test_conditions(cc, form, regs, rflags, window):
    """SETcc/CMOVcc test the conditions of Table B-1; CMOVcc r32 zero-extends the destination
    even when the condition is false."""
    check_unicorn(form.format(cc), regs, rflags, window, ALL)


@pytest.mark.parametrize("cc", CONDITIONS)
@FEW
@given(regs=D.regs, rflags=D.flags)
def test_conditions_after_lazy_flags(cc, regs, rflags):
    """The conditions read flags an arithmetic instruction just produced (lazy flags here)."""
    check_unicorn(f"sub ecx, edx\nset{cc} al\nadc bl, bh\nset{cc} ah\ninc si\nset{cc} dl\n"
                  f"shl r8, 3\nset{cc} dh", regs, rflags, b"", ALL)


# --- LEA (SDM Vol. 2A LEA, Table 3-53 operand/address size) ----------------------------------

LEA_FORMS = ["lea rax, [rbx + rcx*4 + 0x10]", "lea eax, [rbx + rcx*8 - 1]", "lea ax, [rsi + rdi]",
             "lea rdx, [rip + 0x100]", "lea ecx, [ebx + esi*2 + 5]", "lea r9, [r10*8]",
             "lea rax, [0x12345678]", "lea esi, [eax]", "lea rsi, [rbp + r13*1 + 0x7fffffff]",
             "lea eax, [rip]", "lea cx, [ebx - 3]", "lea r12, [r12 + r12*2]",
             "lea rsp, [rsp]", "lea r11d, [r13 - 0x80000000]"]


@pytest.mark.parametrize("src", LEA_FORMS)
@FEW
@given(regs=D.regs, rflags=D.flags)
def test_lea(src, regs, rflags):
    """LEA: the effective address computed with the address size, truncated or zero-extended to
    the operand size; no flags."""
    check_unicorn(src, regs, rflags, b"", ALL)


# --- string instructions (SDM Vol. 2B MOVS, STOS, LODS, CMPS, SCAS; REP/REPE/REPNE) -------------

STRING_OPS = ["movs", "stos", "lods", "cmps", "scas"]
SUFFIX = ["b", "w", "d", "q"]
REPS = ["", "rep ", "repe ", "repne "]


def _string_cases():
    for op in STRING_OPS:
        for sfx in SUFFIX:
            for rep in REPS:
                if rep in ("repe ", "repne ") and op not in ("cmps", "scas"):
                    continue
                if rep == "rep " and op in ("cmps", "scas"):
                    continue
                yield f"{rep}{op}{sfx}"


window_ab = st.lists(st.sampled_from([0, 0x41]), min_size=64, max_size=64).map(bytes)


@pytest.mark.parametrize("src", list(_string_cases()))
@FEW
@given(regs=D.regs, rflags=D.flags, window=window_ab, df=st.booleans(), count=st.integers(0, 12),
       si=st.integers(-24, 24), di=st.integers(-24, 24),
       acc=st.sampled_from([0, 0x4141414141414141, 0x41, 0x4100]))
def test_string(src, regs, rflags, window, df, count, si, di, acc):
    """String instructions step rSI/rDI by the operand size, down when DF = 1; a REP prefix
    repeats rCX times; REPE/REPNE also stop when ZF is 0/1 after CMPS/SCAS (SDM Vol. 2B REP)."""
    regs.update(rsi=D.R15 + si, rdi=D.R15 + di, rcx=count, rax=acc)
    check_unicorn(src, regs, rflags | (DF if df else 0), window, ALL)


@pytest.mark.parametrize("form", ["tzcnt ecx, edx", "lzcnt rcx, rdx", "rep bsf eax, ebx"])
def test_tzcnt_lzcnt_execute_as_bsf_bsr(form):
    """SDM Vol. 2B TZCNT/LZCNT: "On processors that do not support TZCNT [LZCNT], the instruction
    byte encoding is executed as BSF [BSR]"; CPUID here advertises neither BMI1 nor LZCNT."""
    import x86
    from x86.asm import assemble
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble(form + "\nhlt", address=0x100000), address=0x100000)
    m.cpu.rdx = m.cpu.rbx = 0x0000_0100_0000_1000
    m.cpu.run()
    expected = {"tzcnt ecx, edx": ("rcx", 12), "lzcnt rcx, rdx": ("rcx", 40), "rep bsf eax, ebx": ("rax", 12)}
    reg, value = expected[form]
    assert getattr(m.cpu, reg) == value


@pytest.mark.parametrize("size", [8, 16])
@pytest.mark.parametrize("equal", [True, False])
def test_cmpxchg8b_16b(size, equal):
    """CMPXCHG8B/16B: equal -> ZF = 1 and m := rCX:rBX; else ZF = 0 and rDX:rAX := m."""
    import x86
    from x86.asm import assemble
    half = size // 2
    mnem = "cmpxchg8b qword ptr [rdi]" if size == 8 else "cmpxchg16b xmmword ptr [rdi]"
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble(mnem + "\nhlt", address=0x100000), address=0x100000)
    mask = (1 << (8 * half)) - 1
    lo, hi = 0x1111111111111111 & mask, 0x2222222222222222 & mask
    m.memory.write(0x200000, lo.to_bytes(half, "little") + hi.to_bytes(half, "little"))
    m.cpu.rdi = 0x200000
    m.cpu.rax, m.cpu.rdx = (lo, hi) if equal else (0, 0)
    m.cpu.rbx, m.cpu.rcx = 0x3333333333333333, 0x4444444444444444
    m.cpu.run()
    data = m.memory.read(0x200000, size)
    if equal:
        assert m.cpu.rflags & 0x40
        assert data == (0x3333333333333333 & mask).to_bytes(half, "little") + \
            (0x4444444444444444 & mask).to_bytes(half, "little")
    else:
        assert not m.cpu.rflags & 0x40
        assert (m.cpu.rax, m.cpu.rdx) == (lo, hi)


def test_cmpxchg16b_needs_16_byte_alignment():
    """CMPXCHG16B: #GP(0) when the operand is not 16-byte aligned (empty IDT: shutdown)."""
    import x86
    from x86.asm import assemble
    m = x86.Machine(memory_size=1 << 24)
    m.load(assemble("cmpxchg16b xmmword ptr [rdi]\nhlt", address=0x100000), address=0x100000)
    m.cpu.rdi = 0x200008
    assert m.cpu.run().reason == "shutdown"
