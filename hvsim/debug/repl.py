"""`hvsim debug SCENARIO`: the debugger at a terminal.

With a terminal, the prompt is prompt_toolkit's: line editing, history (Up/Down, Ctrl-R), tab
completion of commands, exit reasons and VMCS field names. An empty line repeats the last
command (as gdb does). Without a terminal (a pipe, a log) or with `--plain`, lines are read
from standard input one by one and the output has no colour.
"""
from __future__ import annotations

import sys

from rich.text import Text

from hvsim import scenario as scenarios, views
from hvsim.debug.debugger import Debugger

PROMPT = "(hvsim) "


def _completer(debugger):
    from prompt_toolkit.completion import Completer, Completion

    class DebuggerCompleter(Completer):
        def get_completions(self, document, complete_event):
            text = document.text_before_cursor
            words = text.split()
            partial = "" if not words or text.endswith(" ") else words.pop()
            for word in debugger.completions(words):
                if word.lower().startswith(partial.lower()):
                    yield Completion(word, start_position=-len(partial))

    return DebuggerCompleter()


def _lines_from_terminal(debugger):
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import InMemoryHistory
    session = PromptSession(history=InMemoryHistory(), completer=_completer(debugger),
                            complete_while_typing=False)
    while True:
        try:
            yield session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            yield "quit"


def _lines_from_stream(stream, echo):
    for line in stream:
        echo(PROMPT + line.rstrip("\n"))
        yield line.rstrip("\n")
    yield "quit"


def main(args) -> int:
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.plain
    look = views.Look(plain=not interactive or args.plain)
    console = look.console()
    look = look.for_console(console)
    try:
        scenario = scenarios.load(args.scenario)
        debugger = Debugger(scenario, look=look, width=console.width)
    except scenarios.ScenarioError as e:
        console.print(Text(str(e), style="red"))
        return 2
    console.print(Text(f"hvsim debug {scenario.name}: {scenario.description}. `help` lists the "
                       "commands.", style="dim"))
    for r in debugger.start_view():
        console.print(r)
    sources = []
    if args.commands:
        with open(args.commands) as f:
            sources.append([line.rstrip("\n") for line in f])
    echo = lambda text: console.print(Text(text, style="bold"))      # noqa: E731
    for source in sources:
        for line in source:
            echo(PROMPT + line)
            for r in debugger.run(line):
                console.print(r)
            if debugger.done:
                return 0
    lines = _lines_from_terminal(debugger) if interactive else _lines_from_stream(sys.stdin, echo)
    last = ""
    for line in lines:
        if not line.strip() and interactive:
            line = last
        for r in debugger.run(line):
            console.print(r)
        last = line
        if debugger.done:
            break
    return 0
