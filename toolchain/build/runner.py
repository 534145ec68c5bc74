"""Run a build stage's commands: full output to the stage's log file, one live status line
with elapsed time on the console, and the log's tail plus its path when a command fails."""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import jobserver
from ..errors import ToolchainError

TAIL_LINES = 40
# Each command runs in its own process group, so that stopping a build stops the whole make
# (and the compilers under it) also when the signal reached doit alone: SIGTERM from a CI
# runner, `timeout`, `kill`. toolchain.interrupt calls stop_all() on SIGINT and SIGTERM.
_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()


def stop_all(sig: int = signal.SIGTERM) -> None:
    """Send `sig` to every command running now, and everything it started."""
    with _LIVE_LOCK:
        groups = list(_LIVE)
    for group in groups:
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass


class StageError(ToolchainError):
    """A command of a build stage failed."""


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m:d}:{s:02d}"


class Status:
    """A live `[label] step  m:ss` line; on a non-terminal, a line a minute."""

    def __init__(self, label: str, nice: int = 0):
        self.label = label
        self.nice = nice                   # the niceness its commands run at (Stage.nice)
        self.step = ""
        self.timings: list[dict] = []      # each command's step, wall and CPU seconds
        self.start = time.monotonic()
        self.tty = sys.stdout.isatty()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        if self.tty:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def _loop(self):
        interval = 1.0 if self.tty else 60.0
        while not self._stop.wait(interval):
            line = f"[{self.label}] {self.step}  {_fmt(self.elapsed())}"
            if self.tty:
                sys.stdout.write("\r\033[K" + line[: os.get_terminal_size().columns - 1])
            else:
                sys.stdout.write(line + "\n")
            sys.stdout.flush()


def run(cmd: list[str], *, log: Path, cwd: Path, env: dict[str, str] | None = None,
        status: Status | None = None, step: str = "", capture: bool = False) -> str:
    """Run one command, appending its output to `log`; raise StageError with the tail on failure.
    With `capture`, standard output is also returned."""
    cwd.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    if status:
        status.step = step or cmd[0]
    started = time.monotonic()
    with open(log, "ab") as f:
        f.write(f"\n$ cd {cwd} && {shlex.join(cmd)}\n".encode())
        f.flush()
        env, fds = jobserver.for_command(env)      # its makes share the run's jobs
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE if capture else f,
                                stderr=f if capture else subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, pass_fds=fds)
        with _LIVE_LOCK:
            _LIVE.add(proc.pid)
        if status and status.nice:
            # its own process group (new session): what it has started by now, and (inherited)
            # all it starts later; set from here, as a pre-exec hook is unsafe with threads
            try:
                os.setpriority(os.PRIO_PGRP, proc.pid, min(os.getpriority(os.PRIO_PROCESS, 0) + status.nice, 19))
            except OSError:
                pass           # gone already, or not permitted: only the order changes
        try:
            out = proc.stdout.read() if capture else b""
            # the command's own CPU (with all it ran and waited for), not the process's
            # children's: with doit -P thread, stages of two toolchains run in one process
            _, code, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(code)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc.pid)
            if proc.poll() is None:      # left by an exception (an interrupt): nothing may stay behind
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if capture:
            f.write(out)
        wall, cpu = time.monotonic() - started, usage.ru_utime + usage.ru_stime
        f.write(f"# {step or cmd[0]}: {wall:.1f} s wall, {cpu:.1f} s CPU, exit status {proc.returncode}\n".encode())
    if status:
        status.timings.append({"step": step or cmd[0], "seconds": round(wall, 1), "cpu_seconds": round(cpu, 1)})
    if proc.returncode != 0:
        raise StageError(f"`{shlex.join(cmd)[:200]}` failed with exit status {proc.returncode}"
                         f"\n--- last lines of {log} ---\n{tail(log)}",
                         where=step or cmd[0], fix=f"read the full log: {log}")
    return out.decode(errors="replace") if capture else ""


OWNED = ".musl-toolchain-owned"   # in every folder clean_dir made: ours to empty again


def clean_dir(path: Path) -> Path:
    """An empty folder at `path` for a stage to work in. What was there is removed only if
    this tool made it (its marker is inside) or it is empty; anything else stops the run."""
    if path.is_symlink() or path.exists():
        if path.is_dir() and not path.is_symlink() and (path / OWNED).is_file():
            shutil.rmtree(path)
        elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
        else:
            raise ToolchainError(f"{path} exists, but this tool did not make it (no {OWNED} in it)",
                                 fix="move it away (it is left untouched), or choose another out= folder")
    path.mkdir(parents=True)
    (path / OWNED).write_text("made by musl-toolchain: emptied when its stage runs again\n")
    return path


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
