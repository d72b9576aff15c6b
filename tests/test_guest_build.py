"""The freestanding C guest (tests/guests) builds into a sane ELF image.

Also checks EXPECTED_OUTPUT.txt without hvsim: by running the guest as a
Linux process (-DHVSIM_HOST_TEST), and, when unicorn is installed, by
running the real guest image under unicorn with the hvsim platform's I/O
ports (0xE9 console, 0xF4 exit) emulated.
"""

import importlib.util
import pathlib
import platform
import shutil
import struct
import subprocess
import sys

import pytest

from x86 import elf

GUESTS = pathlib.Path(__file__).resolve().parent / "guests"
EXPECTED = (GUESTS / "EXPECTED_OUTPUT.txt").read_text(encoding="ascii")
IMAGE_BASE, STACK_TOP, FOUR_MIB = 0x200000, 0x180000, 4 << 20

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
x86_64_linux = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and platform.machine() in ("x86_64", "AMD64")),
    reason="runs an x86-64 Linux executable")


def _load_build():
    spec = importlib.util.spec_from_file_location("hvsim_guest_build", GUESTS / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


@pytest.fixture(scope="module")
def hello_path():
    return build.build_guest("hello")


@pytest.fixture(scope="module")
def hello(hello_path):
    return elf.parse_elf64(hello_path.read_bytes())


def test_build_returns_an_elf(hello_path):
    assert hello_path.is_file() and hello_path.name == "hello.elf"
    assert elf.is_elf(hello_path.read_bytes())


def test_entry_is_start_at_image_base(hello):
    assert hello.elf_type == elf.ET_EXEC
    assert hello.entry == IMAGE_BASE
    (first,) = [s for s in hello.segments if s.vaddr <= hello.entry < s.vaddr + s.memsz]
    assert first.executable and not first.writable


def test_segments_are_sane(hello):
    segments = sorted(hello.segments, key=lambda s: s.vaddr)
    assert [s.flags for s in segments] == [elf.PF_R | elf.PF_X, elf.PF_R, elf.PF_R | elf.PF_W]
    for seg in segments:
        assert seg.paddr == seg.vaddr                   # identity mapped
        assert seg.vaddr % 0x1000 == 0
        assert IMAGE_BASE <= seg.vaddr and seg.vaddr + seg.memsz <= FOUR_MIB
        assert 0 < seg.filesz <= seg.memsz
        assert not (seg.writable and seg.executable)
    for lower, upper in zip(segments, segments[1:]):
        assert lower.vaddr + lower.memsz <= upper.vaddr  # no overlap
    data = segments[-1]
    assert data.memsz > data.filesz                     # .bss, zero-filled by the loader
    assert STACK_TOP <= IMAGE_BASE


def test_entry_stub_sets_the_stack_and_exits_through_port_f4(hello):
    iced_x86 = pytest.importorskip("iced_x86")
    text = hello.segments[0]
    formatter = iced_x86.Formatter(iced_x86.FormatterSyntax.INTEL)
    code = [formatter.format(i) for i in iced_x86.Decoder(64, text.data[:0x19], ip=text.vaddr)]
    assert code[:4] == ["cli", "lea rsp,[180000h]", "cld", "xor ebp,ebp"]
    assert code[4].startswith("call ")
    assert code[5:] == ["mov edx,0F4h", "out dx,eax", "hlt", "jmp short 0000000000200016h"]


def test_guest_code_uses_general_registers_only(hello):
    iced_x86 = pytest.importorskip("iced_x86")
    text = hello.segments[0]
    for ins in iced_x86.Decoder(64, text.data, ip=text.vaddr):
        assert ins.code != iced_x86.Code.INVALID, hex(ins.ip)
        regs = [ins.op_register(k) for k in range(ins.op_count)]
        assert not any(iced_x86.Register.XMM0 <= r <= iced_x86.Register.ZMM31 for r in regs), \
            f"{ins} at {ins.ip:#x}"
        assert ins.mnemonic != iced_x86.Mnemonic.ENDBR64


def test_build_is_cached(hello_path):
    mtime = hello_path.stat().st_mtime_ns
    assert build.build_guest("hello") == hello_path
    assert hello_path.stat().st_mtime_ns == mtime


def test_build_into_outdir(tmp_path, hello):
    path = build.build_guest("hello", outdir=tmp_path)
    assert path == tmp_path / "hello.elf"
    assert elf.parse_elf64(path.read_bytes()) == hello
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hello.elf"]


def test_unknown_guest():
    with pytest.raises(FileNotFoundError, match="no-such-guest"):
        build.build_guest("no-such-guest")


def test_expected_output_file():
    assert EXPECTED.startswith("Hello from hvsim guest\n")
    assert EXPECTED.endswith("checks: 12 run, failure mask 0x0\n")
    assert "MISMATCH" not in EXPECTED


@x86_64_linux
def test_host_build_prints_expected_output_and_exits_0():
    exe = build.build_guest("hello", host_test=True)
    run = subprocess.run([str(exe)], capture_output=True, timeout=60, check=False)
    assert run.stdout.decode("ascii") == EXPECTED
    assert run.returncode == 0


@x86_64_linux
def test_host_build_reports_a_wrong_result(tmp_path):
    """Corrupt the initialised .data word: check 0 fails, status is bit 0."""
    exe = build.build_guest("hello", host_test=True)
    raw = bytearray(exe.read_bytes())
    (offset,) = [p_offset for p_type, p_flags, p_offset in _program_headers(raw)
                 if p_type == elf.PT_LOAD and p_flags & elf.PF_W]
    (data,) = [s for s in elf.parse_elf64(raw).segments if s.writable]
    raw[offset + data.data.index((0x1234ABCD).to_bytes(4, "little"))] ^= 0x01
    patched = tmp_path / "hello-corrupt"
    patched.write_bytes(raw)
    patched.chmod(0o755)
    run = subprocess.run([str(patched)], capture_output=True, timeout=60, check=False)
    assert run.returncode == 1
    out = run.stdout.decode("ascii")
    assert "data: 0x1234abcc," in out
    assert "MISMATCH data: got 0x1234abcc, expected 0x1234abcd\n" in out
    assert out.endswith("checks: 12 run, failure mask 0x1\n")


def _program_headers(raw):
    """(p_type, p_flags, p_offset) of each program header (gABI Elf64_Phdr)."""
    phoff, = struct.unpack_from("<Q", raw, 32)
    phentsize, phnum = struct.unpack_from("<HH", raw, 54)
    return [struct.unpack_from("<IIQ", raw, phoff + i * phentsize) for i in range(phnum)]


def test_guest_image_under_unicorn(hello):
    """The real image, loaded from its PT_LOAD segments, on the hvsim port contract."""
    unicorn = pytest.importorskip("unicorn")
    from unicorn import x86_const

    emu = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_64)
    emu.mem_map(0, FOUR_MIB)
    for seg in hello.segments:
        emu.mem_write(seg.paddr, seg.data + bytes(seg.memsz - seg.filesz))
    console, status = bytearray(), []

    def on_out(uc, port, size, value, _user):
        if port == 0xE9 and size == 1:
            console.append(value)
        elif port == 0xF4 and size == 4:
            status.append(value)
            uc.emu_stop()
        else:
            raise AssertionError(f"unexpected OUT to port {port:#x}, size {size}")

    emu.hook_add(unicorn.UC_HOOK_INSN, on_out, None, 1, 0, x86_const.UC_X86_INS_OUT)
    emu.emu_start(hello.entry, 1 << 40, count=5_000_000)
    assert console.decode("ascii") == EXPECTED
    assert status == [0]
