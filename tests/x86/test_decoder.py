"""The decoder's records against iced-x86 (SDM Vol. 2A chapter 2 "Instruction Format": prefixes,
ModR/M and SIB addressing, displacement and immediate; 2.2.1 REX; Table 2-1/2-2 16- and 32-bit
addressing; 2.2.1.6 RIP-relative addressing; 3.1.1.3 default segments, "SS for rBP/rSP bases").

For each encoding of a table, every field of `decode.decode_block`'s record is compared with what
iced-x86 reports for the same bytes: length, operand sizes, register byte offsets (AH..BH are byte
1 of rAX..rBX), memory base/index/scale/displacement, effective segment, address size, immediates
and branch displacements relative to the next instruction.
"""
import iced_x86 as ix
import pytest

from x86 import decode
from x86.asm import assemble

F = {name: k for k, name in enumerate(decode.FIELDS)}
IP = 0x100000

FORMS_64 = [
    "add al, bl", "add ah, bh", "adc ch, dh", "sub sil, r9b", "sbb cx, dx", "cmp ecx, r12d",
    "and rcx, rdx", "or al, 0x7f", "xor bh, 0x80", "test ax, 0x1234", "add esi, -5",
    "add r10, -0x12345678", "add dword ptr [r15 + 8], esi", "sub rdx, qword ptr [r15 - 8]",
    "add byte ptr [rbx + rcx*4 + 0x10], ah", "cmp word ptr [rbp - 2], 0x1234",
    "inc qword ptr [rsp + 8]", "dec r9b", "neg dword ptr [rip + 0x100]", "not word ptr [rax]",
    "mov rax, 0x123456789abcdef0", "mov al, byte ptr [0x1234]", "mov fs:[rax], ecx",
    "mov rax, qword ptr gs:[rbx + rsi*8]", "lea eax, [ebx + esi*2 + 5]", "lea rax, [r12 + r13]",
    "lea rdx, [rip - 0x40]", "lea r9, [r10*8]", "lea eax, [eip + 0x20]",
    "movzx eax, bl", "movzx cx, ah", "movsx r9, word ptr [r10]", "movsxd rax, dword ptr [rcx]",
    "shl al, 1", "shr ecx, cl", "sar r9, 63", "rol word ptr [rax], 3", "rcr bh, cl",
    "shld eax, ebx, 5", "shrd qword ptr [rsi], rdx, cl", "mul bl", "imul r9, r10, -77",
    "imul si, word ptr [rdi]", "div rcx", "idiv byte ptr [rax]", "bt eax, ecx",
    "bts qword ptr [rax], 63", "btr word ptr [rbx], cx", "btc r9, r10", "bsf eax, edx",
    "bsr r9, qword ptr [r15]", "bswap r9", "xchg al, ah", "xchg qword ptr [rax], rcx",
    "xadd dword ptr [rax], ecx", "lock cmpxchg qword ptr [rax], rcx", "lock add dword ptr [rbx], 1",
    "sete al", "setg byte ptr [rax]", "cmovne ecx, edx", "cmovl r9, qword ptr [rax]",
    "cbw", "cwde", "cdqe", "cwd", "cdq", "cqo", "lahf", "sahf", "clc", "stc", "cmc", "cld", "std",
    "xlatb", "movsb", "rep movsq", "rep stosd", "lodsw", "repe cmpsb", "repne scasq",
    "movs byte ptr es:[rdi], byte ptr fs:[rsi]", "addr32 rep movsb",
    "push rax", "push 0x12", "pop r9", "push qword ptr [rax]", "call rax", "ret", "ret 8",
    "jmp qword ptr [rip + 0x10]", "enter 0x10, 2", "leave", "loop .", "jrcxz .", "jecxz .",
    "nop", "ud2", "hlt",
]
BRANCHES_64 = ["jmp .+0x80", "jmp .-0x10", "call .+0x1000", "je .+0x10", "jno .-0x100"]
FORMS_32 = ["add eax, [ebp + 8]", "mov ax, [bx + si]", "add cx, [bp + di + 4]", "lea esi, [esp + 4]",
            "push ebx", "pop dword ptr [eax]", "rep movsd", "addr16 lodsb", "inc ecx", "dec dx",
            "mov eax, fs:[0x10]", "xchg eax, [ecx]"]
FORMS_16 = ["add ax, [bx + si + 4]", "mov al, [bp]", "add eax, [ebx]", "lea ax, [bx + di]",
            "rep stosw", "push ax", "inc si", "mov ax, ss:[0x10]", "les bx, [si]"]


def iced_expect(ins: ix.Instruction, bits: int) -> dict:
    """The record fields as the manual (and iced) define them for this instruction."""
    exp = {"len": ins.len, "code": ins.code}
    for k in range(min(ins.op_count, 3)):
        kind = ins.op_kind(k)
        if kind == ix.OpKind.REGISTER:
            reg = ins.op_register(k)
            info = ix.RegisterInfo(reg)
            if ix.RegisterExt.is_gpr(reg):
                num = info.full_register - ix.Register.RAX if info.full_register != info.register \
                    or ix.RegisterExt.is_gpr64(reg) else None
                full = ix.RegisterInfo(reg).full_register
                off = (full - ix.Register.RAX) * 8
                if reg in (ix.Register.AH, ix.Register.CH, ix.Register.DH, ix.Register.BH):
                    off += 1
                exp[f"r{k}"] = off
                exp[f"k{k}"] = decode.K_REG
        elif kind == ix.OpKind.MEMORY:
            exp[f"k{k}"] = decode.K_MEM
            base, index = ins.memory_base, ins.memory_index
            if base in (ix.Register.RIP, ix.Register.EIP):
                exp["base"] = decode.RIPREG
                exp["disp"] = (ins.memory_displacement - ins.next_ip) & (2**64 - 1)
            else:
                exp["disp"] = ins.memory_displacement & (2**64 - 1)
                if base != ix.Register.NONE:
                    exp["base"] = ix.RegisterInfo(base).full_register - ix.Register.RAX
                if index not in (ix.Register.NONE, ix.Register.AL):
                    exp["index"] = ix.RegisterInfo(index).full_register - ix.Register.RAX
                    exp["scale"] = {1: 0, 2: 1, 4: 2, 8: 3}[ins.memory_index_scale]
            exp["seg"] = ["ES", "CS", "SS", "DS", "FS", "GS"].index(
                ix.Register.__dict__ and _reg_name(ins.memory_segment))
            reg_for_size = base if base not in (ix.Register.NONE, ix.Register.RIP, ix.Register.EIP) \
                else index if index not in (ix.Register.NONE, ix.Register.AL) else None
            if reg_for_size is not None:
                exp["asz"] = ix.RegisterInfo(reg_for_size).size
            elif base == ix.Register.EIP:
                exp["asz"] = 4
        elif kind in (ix.OpKind.NEAR_BRANCH16, ix.OpKind.NEAR_BRANCH32, ix.OpKind.NEAR_BRANCH64):
            exp["imm"] = (ins.near_branch_target - ins.next_ip) & (2**64 - 1)
    if ins.op_count and ins.op_kind(0) == ix.OpKind.REGISTER and ix.RegisterExt.is_gpr(ins.op_register(0)):
        exp["osz"] = ix.RegisterInfo(ins.op_register(0)).size
    elif ins.op_count and ins.op_kind(0) == ix.OpKind.MEMORY and ins.memory_size \
            and ins.mnemonic not in (ix.Mnemonic.LES, ix.Mnemonic.JMP, ix.Mnemonic.CALL):
        exp["osz"] = ix.MemorySizeInfo(ins.memory_size).size
    exp["pfx"] = (decode.P_LOCK if ins.has_lock_prefix else 0) | \
        (decode.P_REP if ins.has_rep_prefix or ins.has_repe_prefix else 0) | \
        (decode.P_REPNE if ins.has_repne_prefix else 0)
    if ins.condition_code:
        exp["cond"] = int(ins.condition_code) - 1
    return exp


def _reg_name(reg) -> str:
    return next(n for n in ("ES", "CS", "SS", "DS", "FS", "GS") if getattr(ix.Register, n) == reg)


def check(src: str, bits: int):
    directive = {16: ".code16\n", 32: ".code32\n", 64: ""}[bits]
    code = assemble(directive + src, address=IP)
    ins = ix.Decoder(bits, code, ip=IP).decode()
    assert ins.len == len(code), f"{src}: one instruction expected"
    recs, truncated = decode.decode_block(code, IP, bits)
    assert not truncated and recs, src
    rec = dict(zip(decode.FIELDS, recs[0]))
    assert rec["mnem"] not in (decode.INVALID, decode.UNMODELLED), f"{src}: {rec}"
    for field, want in iced_expect(ins, bits).items():
        assert rec[field] == want, f"{src} ({bits}-bit): {field} = {rec[field]:#x}, iced says {want:#x}"


@pytest.mark.parametrize("src", FORMS_64 + BRANCHES_64)
def test_decode_64(src):
    check(src, 64)


@pytest.mark.parametrize("src", FORMS_32)
def test_decode_32(src):
    check(src, 32)


@pytest.mark.parametrize("src", FORMS_16)
def test_decode_16(src):
    check(src, 16)


IMMEDIATES = [("add al, 0xff", 0xFF), ("add ecx, -1", None), ("enter 0x1234, 3", 0x1234),
              ("imul eax, ebx, 0x12345", 0x12345), ("shld eax, ebx, 7", 7), ("ret 0x10", 0x10)]


@pytest.mark.parametrize("src,want", IMMEDIATES)
def test_immediates(src, want):
    """Immediates as encoded, sign-extended to the operand size where the opcode says so."""
    code = assemble(src, address=IP)
    rec = dict(zip(decode.FIELDS, decode.decode_block(code, IP, 64)[0][0]))
    if want is None:
        assert rec["imm"] & 0xFFFFFFFF == 0xFFFFFFFF
    else:
        assert rec["imm"] == want
    if src.startswith("enter"):
        assert rec["imm2"] == 3


INVALID = [("f0 01 d8", "LOCK on a register destination (SDM Vol. 2A LOCK: #UD)"),
           ("0f ff", "UD0 without ModRM / undefined"), ("f0 90", "LOCK NOP"),
           ("8d c0", "LEA with a register source"), ("0f 0b", None)]


@pytest.mark.parametrize("hexbytes,why", INVALID)
def test_invalid_encodings(hexbytes, why):
    """Undefined encodings decode to the INVALID record (the core raises #UD); UD2 is a valid
    instruction whose execution raises #UD."""
    recs, _ = decode.decode_block(bytes.fromhex(hexbytes) + b"\xf4", IP, 64)
    if why is None:
        assert recs[0][0] == ix.Mnemonic.UD2
    else:
        assert recs[0][0] in (decode.INVALID, decode.UNMODELLED) or \
            recs[0][0] == ix.Mnemonic.UD0, why
