"""Fixtures for the front's tests: scenarios, a debugger driven through its command interface,
and expected output kept as text files (tests/hvsim/expected; HVSIM_UPDATE_EXPECTED=1 rewrites
them after a deliberate change, to be reviewed in the diff)."""
import os
import pathlib

import pytest

from hvsim import scenario, views
from hvsim.debug.debugger import Debugger

EXPECTED = pathlib.Path(__file__).parent / "expected"
WIDTH = 100
PLAIN = views.Look(plain=True)


def expect(name: str, text: str) -> None:
    """`text` equals tests/hvsim/expected/NAME.txt."""
    path = EXPECTED / f"{name}.txt"
    if os.environ.get("HVSIM_UPDATE_EXPECTED"):
        path.write_text(text)
    assert path.exists(), f"no expected output {path.name}: run with HVSIM_UPDATE_EXPECTED=1 and review it"
    assert text == path.read_text()


@pytest.fixture(scope="session")
def tour():
    return scenario.load("tour")


@pytest.fixture
def debugger(tour):
    d = Debugger(tour, look=PLAIN, width=WIDTH)
    d.start()
    yield d
    if not d.done:
        d.execute("quit")
