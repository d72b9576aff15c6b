"""Platform devices on the I/O-port bus: the debug console (port 0xE9) and the exit port (0xF4)."""
from __future__ import annotations

DEBUG_CONSOLE_PORT = 0xE9   # Bochs/QEMU convention: each byte written is printed
EXIT_PORT = 0xF4            # a write ends the run with the value as its exit status


class DebugConsole:
    """Bytes written to port 0xE9 accumulate in `data`; reading the port returns 0xE9, as Bochs does."""

    def __init__(self, echo=None):
        self.data = bytearray()
        self.echo = echo

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")

    def io_read(self, port: int, size: int) -> int:
        return 0xE9

    def io_write(self, port: int, size: int, value: int) -> None:
        chunk = value.to_bytes(size, "little")[:1]
        self.data += chunk
        if self.echo is not None:
            self.echo(chunk.decode("latin-1"))

    def snapshot(self) -> bytes:
        return bytes(self.data)

    def restore(self, state: bytes) -> None:
        self.data = bytearray(state)


class ExitPort:
    """A write of any size ends `run()` with reason "exit" and the value as status."""

    def __init__(self, core):
        self._core = core
        self.status = None

    def io_read(self, port: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def io_write(self, port: int, size: int, value: int) -> None:
        self.status = value
        self._core.set_exit_status(value)

    def snapshot(self):
        return self.status

    def restore(self, state) -> None:
        self.status = state
