"""The `hvsim` command line."""
import subprocess
import sys

from x86.asm import assemble


def hvsim(*args):
    return subprocess.run([sys.executable, "-m", "hvsim.cli", *args], capture_output=True, text=True)


def test_help():
    r = hvsim("--help")
    assert r.returncode == 0 and "virtualization" in r.stdout


def test_run_a_flat_image(tmp_path):
    img = tmp_path / "g.bin"
    img.write_bytes(assemble("mov al, 'A'\nout 0xe9, al\nmov eax, 3\nout 0xf4, eax", address=0x100000))
    r = hvsim("run", str(img), "--address", "0x100000")
    assert r.stdout == "A" and r.returncode == 3
    assert "exit after 4 instructions" in r.stderr


def test_demo_runs_and_shows_the_guest_console():
    r = hvsim("demo", "bare-metal")
    assert r.returncode == 0, r.stderr
    for line in ("#PF handled", "APIC timer interrupt", "woke from HLT", "instructions retired"):
        assert line in r.stdout


def test_demo_list_names_the_scenarios():
    r = hvsim("demo", "--list")
    assert r.returncode == 0 and "tour" in r.stdout and "bare-metal" in r.stdout
