"""What a stage is: one declaration that everything else is derived from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .context import CANADIAN, HERE, Build  # noqa: F401 (the kinds, for stage modules)
from .runner import Status


@dataclass(frozen=True)
class Stage:
    """One build stage, declared once in its module under toolchain/build/stages/. doit's task
    family (its doc, a subtask per target), the graph (`reads`: packages whose source trees it
    reads; `after`: stages before it) and what makes it stale (`config`: the values it uses
    besides files; the text of its module and of the build and check modules it imports;
    `probe`: machine facts checked lazily) all come from here."""

    name: str
    doc: str
    run: Callable[[Build, Status], None]
    reads: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    config: Callable[[Build], dict] = lambda b: {}
    probe: Callable[[Build], dict] | None = None
    makes: str = ""          # what it leaves behind, for the README's task table
    quick_repro: bool = False  # re-run by `repro --from`: cheap, and installs after gcc's stages
    builds: tuple[str, ...] = (HERE,)   # the kinds of builds it is part of (see HERE, CANADIAN)
    # > 0: off the longest chain of the build, its commands run at this niceness, so the
    # stages beside it that others wait for longer get the cores first and it takes what they
    # leave (the order of work only, never what is built)
    nice: int = 0
