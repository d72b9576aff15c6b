"""Tests of x86.asm: Intel-syntax text to flat machine code through GNU binutils.

Expected encodings are from the Intel SDM Vol. 2 (instruction set reference)
and Vol. 3C chapter 31 "VMX Instruction Reference", and the AMD APM Vol. 3
(general-purpose and system instructions), chapter 4.
"""

import tempfile

import pytest

from x86 import asm

try:
    import iced_x86
except ImportError:  # the cross-check is optional
    iced_x86 = None

needs_iced = pytest.mark.skipif(iced_x86 is None, reason="iced-x86 not installed")

# (source, expected bytes) in 64-bit mode.
VMX_SVM_64 = [
    # Intel SDM Vol. 3C, chapter 31
    ("vmxon [rax]", "f3 0f c7 30"),         # F3 0F C7 /6
    ("vmxoff", "0f 01 c4"),
    ("vmclear [rax]", "66 0f c7 30"),       # 66 0F C7 /6
    ("vmptrld [rax]", "0f c7 30"),          # NP 0F C7 /6
    ("vmptrst [rax]", "0f c7 38"),          # NP 0F C7 /7
    ("vmread rax, rbx", "0f 78 d8"),        # 0F 78 /r: VMREAD r/m64, r64
    ("vmread [rcx], rdx", "0f 78 11"),
    ("vmwrite rax, rbx", "0f 79 c3"),       # 0F 79 /r: VMWRITE r64, r/m64
    ("vmwrite rdx, [rcx]", "0f 79 11"),
    ("vmlaunch", "0f 01 c2"),
    ("vmresume", "0f 01 c3"),
    ("vmcall", "0f 01 c1"),
    ("vmfunc", "0f 01 d4"),
    ("invept rax, [rbx]", "66 0f 38 80 03"),   # 66 0F 38 80 /r
    ("invvpid rax, [rbx]", "66 0f 38 81 03"),  # 66 0F 38 81 /r
    ("vmxon [r8]", "f3 41 0f c7 30"),          # REX.B: the prefix F3 comes first
    # AMD APM Vol. 3, chapter 4
    ("vmrun rax", "0f 01 d8"),
    ("vmrun", "0f 01 d8"),
    ("vmload rax", "0f 01 da"),
    ("vmsave rax", "0f 01 db"),
    ("vmmcall", "0f 01 d9"),
    ("stgi", "0f 01 dc"),
    ("clgi", "0f 01 dd"),
    ("skinit eax", "0f 01 de"),
    ("invlpga rax, ecx", "0f 01 df"),
    ("invlpga", "0f 01 df"),
    ("vmrun eax", "67 0f 01 d8"),           # 32-bit address size in 64-bit mode
    ("invlpga eax, ecx", "67 0f 01 df"),
]


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@pytest.mark.parametrize("source, expected", VMX_SVM_64, ids=[s for s, _ in VMX_SVM_64])
def test_vmx_svm_encodings_64(source, expected):
    assert asm.assemble(source) == hexbytes(expected)


@pytest.mark.parametrize("source, bits, expected", [
    ("vmread eax, ebx", 32, "0f 78 d8"),
    ("vmwrite eax, [ebx]", 32, "0f 79 03"),
    ("vmxon [eax]", 32, "f3 0f c7 30"),
    ("invept eax, [ebx]", 32, "66 0f 38 80 03"),
    ("vmrun eax", 32, "0f 01 d8"),
    ("invlpga eax, ecx", 32, "0f 01 df"),
    ("vmrun ax", 16, "0f 01 d8"),
    ("vmrun eax", 16, "67 0f 01 d8"),
    ("vmxon [bx]", 16, "f3 0f c7 37"),       # 16-bit ModRM: rm=111 is [bx]
    ("vmlaunch", 16, "0f 01 c2"),
    ("vmmcall", 32, "0f 01 d9"),
])
def test_vmx_svm_encodings_16_32(source, bits, expected):
    assert asm.assemble(source, bits=bits) == hexbytes(expected)


@pytest.mark.parametrize("bits, expected", [
    (16, "b8 34 12 66 b8 01 00 00 00"),
    (32, "66 b8 34 12 b8 01 00 00 00"),
    (64, "66 b8 34 12 b8 01 00 00 00"),
])
def test_operand_size_follows_bits(bits, expected):
    assert asm.assemble("mov ax, 0x1234\nmov eax, 1", bits=bits) == hexbytes(expected)


def test_labels_resolve_at_the_load_address():
    source = """
    start:
        jmp start               # relative: the same at any address
        mov rax, offset table   # absolute, sign-extended imm32
        movabs rbx, offset table
    table:
        .quad table, start
    """
    at0 = asm.assemble(source)
    at = asm.assemble(source, address=0x401000)
    table = 2 + 7 + 10
    assert at[:2] == at0[:2] == hexbytes("eb fe")
    assert at[2:5] == hexbytes("48 c7 c0")
    assert int.from_bytes(at[5:9], "little") == 0x401000 + table
    assert int.from_bytes(at[11:19], "little") == 0x401000 + table
    assert int.from_bytes(at[table:table + 8], "little") == 0x401000 + table
    assert int.from_bytes(at[table + 8:table + 16], "little") == 0x401000
    assert len(at) == table + 16


def test_high_address_64():
    code = asm.assemble("here: movabs rax, offset here\n.quad here", address=0xFFFF800000100000)
    assert code[:2] == hexbytes("48 b8")
    assert code[2:10] == code[10:18] == (0xFFFF800000100000).to_bytes(8, "little")


def test_16_bit_boot_sector_style():
    code = asm.assemble("""
        mov si, offset msg      # BE iw
        call next               # E8 cw, relative
    next:
        hlt
    msg: .asciz "hi"
    """, bits=16, address=0x7C00)
    assert code == hexbytes("be 07 7c e8 00 00 f4") + b"hi\0"


def test_32_bit_absolute_and_relative():
    code = asm.assemble("""
        mov eax, offset data
        call func
        hlt
    func:
        ret
    data: .long data
    """, bits=32, address=0x100000)
    data = 5 + 5 + 1 + 1
    assert code[:5] == b"\xb8" + (0x100000 + data).to_bytes(4, "little")
    assert code[5:10] == hexbytes("e8 01 00 00 00")
    assert code[data:] == (0x100000 + data).to_bytes(4, "little")


def test_all_sections_in_one_image_and_bss_as_zeros():
    code = asm.assemble("""
        .text
        nop
        .data
    d:  .byte 0x11
        .bss
        .zero 3
        .section .rodata
        .byte 0x22
    """)
    assert code == hexbytes("90 22 11 00 00 00")


def test_empty_source():
    assert asm.assemble("") == b""


def test_error_names_the_user_line_and_text():
    with pytest.raises(asm.AssemblyError) as info:
        asm.assemble("nop\n  vmlaunchx\nmov [rax], 1\nhlt\n")
    message = str(info.value)
    assert "line 2: Error: no such instruction: `vmlaunchx'" in message
    assert "      vmlaunchx" in message
    assert "line 3: Error: ambiguous operand size for `mov'" in message
    assert "mov [rax], 1" in message
    assert "line 1" not in message and "line 4" not in message
    assert isinstance(info.value, ValueError)
    assert [d[0] for d in info.value.diagnostics] == [2, 3]


def test_warnings_are_errors():
    with pytest.raises(asm.AssemblyError, match=r"line 2: Warning: 0x123 shortened to 0x23"):
        asm.assemble("nop\nmov al, 0x123")


def test_nasm_style_comment_is_an_error():
    with pytest.raises(asm.AssemblyError, match="line 1: Error: no such instruction: `comment'"):
        asm.assemble("nop ; comment")


def test_link_error_when_an_offset_does_not_fit():
    with pytest.raises(asm.AssemblyError, match="relocation truncated to fit"):
        asm.assemble("mov si, offset msg\nmsg: .byte 0", bits=16, address=0x10000)


def test_bad_arguments():
    with pytest.raises(ValueError, match="bits"):
        asm.assemble("nop", bits=8)
    with pytest.raises(ValueError, match="address"):
        asm.assemble("nop", address=-1)
    with pytest.raises(ValueError, match="address"):
        asm.assemble("nop", address=1 << 64)
    with pytest.raises(TypeError):
        asm.assemble(b"nop")


def test_results_are_cached():
    source = "mov ecx, 0x480 # cache test"
    assert asm.assemble(source) is asm.assemble(source)
    assert asm.assemble(source, address=0x1000) == asm.assemble(source)


def test_no_files_left_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    asm.assemble("nop # no files left behind, success")
    with pytest.raises(asm.AssemblyError):
        asm.assemble("bogus # no files left behind, failure")
    assert list(tmp_path.iterdir()) == []


def test_missing_binutils_says_to_install_them(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("HVSIM_AS", raising=False)
    monkeypatch.delenv("HVSIM_LD", raising=False)
    with pytest.raises(asm.BinutilsNotFoundError, match="binutils"):
        asm.assemble("nop # missing binutils")


def test_tool_override_must_exist(monkeypatch):
    monkeypatch.setenv("HVSIM_AS", "/nonexistent/as")
    with pytest.raises(asm.BinutilsNotFoundError, match="HVSIM_AS"):
        asm.assemble("nop # bad override")


@needs_iced
@pytest.mark.parametrize("bits, address", [(64, 0x401000), (32, 0x100000), (16, 0x7C00)])
def test_iced_decodes_what_was_assembled(bits, address):
    reg = {64: "rax", 32: "eax", 16: "ax"}[bits]
    source = f"""
    top:
        vmlaunch
        vmresume
        vmcall
        vmrun {reg}
        vmsave {reg}
        clgi
        stgi
        vmmcall
        jmp top
    """
    code = asm.assemble(source, bits=bits, address=address)
    formatter = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL)
    decoded = [(i.ip, formatter.format_mnemonic(i))
               for i in iced_x86.Decoder(bits, code, ip=address)]
    names = ["vmlaunch", "vmresume", "vmcall", "vmrun", "vmsave", "clgi", "stgi", "vmmcall", "jmp"]
    assert [m for _, m in decoded] == names
    assert decoded[0][0] == address
    last = list(iced_x86.Decoder(bits, code, ip=address))[-1]
    assert last.near_branch_target == address


@needs_iced
def test_iced_agrees_on_operands():
    code = asm.assemble("vmread [rcx+8], rdx\nvmwrite r9, [rip+0x10]\ninvvpid r10, [rsp]\n"
                        "vmptrld [rbx+rsi*4]\ninvlpga rax, ecx")
    formatter = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL)
    text = [formatter.format(i) for i in iced_x86.Decoder(64, code, ip=0)]
    # iced shows the RIP-relative operand as its target: 0x10 past the end
    # of the 8-byte vmwrite that follows the 4-byte vmread.
    assert text == ["vmread [rcx+8],rdx", "vmwrite r9,[1Ch]", "invvpid r10,[rsp]",
                    "vmptrld [rbx+rsi*4]", "invlpga rax,ecx"]
