"""Messages from the tasks, each in one write: with `doit -n N` the tasks run in worker
processes that share the terminal or pipe with doit and with each other, and print() writes
its pieces (the text, then the newline) apart, so two processes' lines could cut into each
other (seen: a worker's line glued to doit's next task title)."""
from __future__ import annotations

import sys


def say(text: str, err: bool = False) -> None:
    """`text` and its newline in one write, flushed (to stderr with `err`)."""
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{text}\n")
    stream.flush()
