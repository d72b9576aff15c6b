"""Exit traces (docs/traces.md): the records, the file, `hvsim trace show` and `hvsim trace diff`."""
import json

import pytest

from hvsim import cli, scenario, trace
from hvsim.session import Session

from conftest import PLAIN, WIDTH, expect


@pytest.fixture(scope="module")
def tour_trace():
    s = Session(scenario.load("tour"))
    s.run()
    return s.trace


def test_header_exit_and_end_records(tour_trace):
    h = tour_trace.header
    assert (h["type"], h["format"], h["version"], h["scenario"], h["profile"]) == \
        ("header", "hvsim-exit-trace", 1, "tour", "default")
    exits = tour_trace.exits
    assert [r["seq"] for r in exits] == list(range(1, len(exits) + 1))
    first = exits[0]
    assert (first["reason"], first["reason_number"], first["entry_failure"]) == ("IO_INSTRUCTION", 30, False)
    q = first["qualification"]
    assert (q["raw"], q["layout"]) == ("0x3fd0008", "IoInstruction")
    assert q["fields"] == {"size_encoding": 0, "direction": "IN", "string": False, "rep": False,
                           "operand_encoding": "DX", "port": 0x3FD}
    assert first["instruction_length"] == 1 and first["guest_rip"] == "0x2000e9"
    assert list(first["registers"]) == list(trace.REGISTERS)
    assert first["explain"].startswith("VM exit 30 IO_INSTRUCTION at guest RIP 0x2000e9")
    end = tour_trace.records[-1]
    assert (end["type"], end["outcome"], end["seq"]) == ("end", "stop", len(exits))


def test_records_decode_back_to_the_same_exit(tour_trace):
    for rec in tour_trace.exits[:5] + tour_trace.exits[-3:]:
        ex = trace.to_vm_exit(rec)
        assert trace.exit_record(rec["seq"], rec["icount"], ex,
                                 {k: int(v, 0) for k, v in rec["registers"].items()}) == rec


def test_vmfail_and_entry_failure_records():
    s = Session(scenario.load("vmfail"))
    s.run()
    fail, end = s.trace.records
    assert (fail["type"], fail["instruction"], fail["outcome"], fail["error"]) == \
        ("vmfail", "VMLAUNCH", "VmFailValid", 7)
    assert fail["check"]["section"] == "27.2.1.1"
    assert end["outcome"] == "error" and end["error"].startswith("VmFailValid")
    s = Session(scenario.load("entry-failure"))
    s.run()
    rec = s.trace.exits[0]
    assert rec["entry_failure"] and rec["exit_reason"] == "0x80000021"
    assert rec["check"]["section"] == "27.3.1.5"
    assert trace.to_vm_exit(rec).check == s.last_exit.check


def test_file_round_trip(tour_trace, tmp_path):
    path = tmp_path / "t.jsonl"
    tour_trace.save(path)
    lines = path.read_text().splitlines()
    assert len(lines) == len(tour_trace.records) + 1
    assert all(isinstance(json.loads(line), dict) for line in lines)
    again = trace.load(path)
    assert (again.header, again.records) == (tour_trace.header, tour_trace.records)


def test_not_a_trace(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"type": "exit"}\n')
    with pytest.raises(trace.TraceError, match="header"):
        trace.load(p)
    p.write_text("not json\n")
    with pytest.raises(trace.TraceError, match="not JSON"):
        trace.load(p)


def _changed(t, index, path, value):
    records = json.loads(json.dumps(t.records))
    target = records[index]
    *parents, last = path.split(".")
    for p in parents:
        target = target[p]
    target[last] = value
    return trace.Trace(dict(t.header), records)


def test_diff_equal_and_first_divergence(tour_trace):
    assert trace.diff(tour_trace, tour_trace) is None
    b = _changed(tour_trace, 370, "qualification.raw", "0x14")
    b = _changed(b, 400, "registers.rax", "0x1")
    d = trace.diff(tour_trace, b)
    assert (d.where, d.field, d.a, d.b) == ("exit 371", "qualification.raw", "0x4", "0x14")
    assert str(d) == "first divergence at exit 371: qualification.raw: 0x4 (A) != 0x14 (B)"
    d = trace.diff(tour_trace, b, ignore=["qualification"])
    assert (d.where, d.field) == ("exit 401", "registers.rax")
    assert trace.diff(tour_trace, b, ignore=["qualification", "registers"]) is None


def test_diff_of_traces_of_different_length_and_header(tour_trace):
    short = trace.Trace(dict(tour_trace.header), tour_trace.records[:10])
    d = trace.diff(tour_trace, short)
    assert (d.where, d.field, d.a, d.b) == ("exit 11", "type", "exit", None)
    other = trace.Trace(dict(tour_trace.header, profile="minimal"), tour_trace.records)
    assert trace.diff(tour_trace, other).where == "header"


def test_trace_show_and_diff_commands(tour_trace, tmp_path, capsys):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    tour_trace.save(a)
    _changed(tour_trace, 82, "reason", "HLT").save(b)
    assert cli.main(["trace", "diff", str(a), str(a)]) == 0
    assert capsys.readouterr().out == f"the traces are equal: 613 exits, {len(tour_trace.records)} records\n"
    assert cli.main(["trace", "diff", str(a), str(b)]) == 1
    assert capsys.readouterr().out == "first divergence at exit 83: reason: CPUID (A) != HLT (B)\n"
    assert cli.main(["trace", "diff", str(a), str(b), "--ignore", "reason"]) == 0
    capsys.readouterr()
    assert cli.main(["trace", "show", str(a), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "exit trace: scenario tour, profile default" in out
    assert "MOV to CR4 from RAX" in out and "the VMM returned" in out
    assert cli.main(["trace", "show", str(a), "--exit", "371", "--plain"]) == 0
    out = capsys.readouterr().out
    assert ".access_type" in out and "MOV_TO_CR" in out and "rax" in out
    assert cli.main(["trace", "show", str(tmp_path / "missing.jsonl")]) == 2


def test_trace_show_renders_as_expected(tour_trace):
    t = trace.Trace(tour_trace.header, tour_trace.records[80:86] + tour_trace.records[-3:])
    from hvsim import views
    expect("trace_show", PLAIN.text([views.trace_table(t, PLAIN, trace.to_vm_exit)], WIDTH))
