"""Ctrl-C: one line `interrupted` and exit status 130 (128 + SIGINT), never a traceback.

doit lets KeyboardInterrupt escape with a traceback through its own frames. Instead the first
SIGINT raises SystemExit(130): `finally` blocks still run (file locks released, temporary
folders removed, doit's finally closes its dependency file) and Python exits quietly. A
second Ctrl-C while that cleanup runs leaves at once.
"""
from __future__ import annotations

import os
import signal
import sys

EXIT_STATUS = 130


def install() -> None:
    main_pid = os.getpid()

    def leave_now(signum, frame):
        os._exit(EXIT_STATUS)

    def interrupted(signum, frame):
        signal.signal(signal.SIGINT, leave_now)
        if os.getpid() == main_pid:   # doit's worker processes (-P process) stay silent
            print("interrupted", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_STATUS)

    signal.signal(signal.SIGINT, interrupted)
