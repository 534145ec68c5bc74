"""Ctrl-C: one line `interrupted` and exit status 130 (128 + SIGINT), never a traceback;
SIGTERM (a CI runner cancelling, `timeout`, `kill`): `terminated`, exit status 143. Either
way the running build commands are stopped first: they run in their own process groups
(toolchain/build/runner.py), which a signal sent to doit alone would not reach.

doit lets KeyboardInterrupt escape with a traceback through its own frames. Instead the first
SIGINT raises SystemExit(130): `finally` blocks still run (file locks released, temporary
folders removed, doit's finally closes its dependency file) and Python exits quietly. A
second Ctrl-C while that cleanup runs leaves at once.
"""
from __future__ import annotations

import os
import signal

from .build import runner
from .say import say

EXIT_STATUS = 130
WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated"}


def install() -> None:
    main_pid = os.getpid()

    def leave_now(signum, frame):
        runner.stop_all(signal.SIGKILL)
        os._exit(128 + signum)

    def interrupted(signum, frame):
        for sig in WORDS:
            signal.signal(sig, leave_now)
        runner.stop_all()
        if os.getpid() == main_pid:   # doit's worker processes (-P process) stay silent
            say(WORDS[signum], err=True)
        raise SystemExit(128 + signum)

    for sig in WORDS:
        signal.signal(sig, interrupted)
