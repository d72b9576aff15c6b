"""`hvsim debug` end to end in a real terminal: tmux runs it, send-keys types, capture-pane reads
the screen. Set a breakpoint on an exit reason (with tab completion), continue, read the decoded
exit, step back, quit."""
import pathlib
import shlex
import shutil
import subprocess
import sys
import time

import pytest

TMUX = shutil.which("tmux")
ROOT = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(TMUX is None, reason="tmux is not installed: the end-to-end terminal "
                                "test of `hvsim debug` needs it (apt-get install tmux)")


class Terminal:
    def __init__(self, tmp_path, command: str):
        self.sock = str(tmp_path / "tmux.sock")        # a server of our own, not the user's
        self.name = "hvsim"
        # the terminal's own size, not the one pytest's environment may name
        self.tmux("new-session", "-d", "-s", self.name, "-x", "110", "-y", "45", "-c", str(ROOT),
                  f"env -u COLUMNS -u LINES TERM=xterm-256color {command}; echo HVSIM-EXITED-$?; sleep 60")

    def tmux(self, *args) -> str:
        return subprocess.run([TMUX, "-S", self.sock, *args], capture_output=True, text=True,
                              check=True, timeout=20).stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-t", self.name, "-S", "-2000")

    def type(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.name, *keys)

    def wait_for(self, text: str, timeout: float = 30) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear; the screen:\n{self.screen()}")

    def close(self) -> None:
        subprocess.run([TMUX, "-S", self.sock, "kill-server"], capture_output=True, timeout=20)


def test_break_on_an_exit_reason_continue_step_back_quit(tmp_path):
    term = Terminal(tmp_path, shlex.quote(sys.executable) + " -m hvsim.cli debug tour")
    try:
        term.wait_for("(hvsim)")
        term.type("break exit CR_AC", "Tab")           # completes the reason's name
        term.wait_for("break exit CR_ACCESS")
        term.type("Enter")
        term.wait_for("breakpoint 1: VM exit CR_ACCESS")
        term.type("continue", "Enter")
        screen = term.wait_for("VM exit 28 CR_ACCESS at guest RIP 0x200096: MOV to CR4 from RAX.")
        assert "VM exit 371: CR_ACCESS; breakpoint 1: VM exit CR_ACCESS" in screen
        for row in ("EXIT_QUALIFICATION", ".cr", ".access_type", "MOV_TO_CR", ".gpr", "RAX"):
            assert row in screen
        term.type("back", "Enter")
        screen = term.wait_for("back at 2,400 instructions")
        assert "in the guest: 371 VM entries, 2,400 guest instructions, guest RIP 0x200091" in screen
        term.type("quit", "Enter")
        term.wait_for("HVSIM-EXITED-0")
    finally:
        term.close()
