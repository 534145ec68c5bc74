"""One GNU make jobserver for a whole doit run: every make of every stage, of every toolchain
doit builds at once (`doit -n 3 toolchain:x86_64 toolchain:aarch64 toolchain:armv7`), takes
its parallel jobs from the same `jobs` tokens, so toolchains built side by side share the
cores instead of each running `make -j<jobs>` on all of them.

It is make's own protocol (a pipe holding jobs - 1 tokens, named in MAKEFLAGS as
`--jobserver-auth=R,W`, which make 4.2 and newer read; each make also runs one job without a
token), so gcc's sub-makes, `gcc -flto=jobserver` and cargo join it too. doit's worker
processes are forked after the pipe is made and inherit it; where they were not (a spawned
worker), each make gets `-j<jobs>` as before. The jobs setting still never changes what is
built, only how many jobs run at once."""
from __future__ import annotations

import os

_PIPE: tuple[int, int] | None = None
_JOBS = 0


def start(jobs: int) -> None:
    """Make the run's jobserver (once, in doit's main process, before it starts workers)."""
    global _PIPE, _JOBS
    if _PIPE is not None or jobs < 2:
        return
    read, write = os.pipe()
    os.write(write, b"+" * (jobs - 1))
    _PIPE, _JOBS = (read, write), jobs


def active() -> bool:
    """This process holds the run's jobserver pipe."""
    if _PIPE is None:
        return False
    try:
        for fd in _PIPE:
            os.fstat(fd)
    except OSError:
        return False
    return True


def make_jobs(jobs: int) -> list[str]:
    """make's -j argument: none when the jobserver hands out the jobs (a -j on make's command
    line would make it start a jobserver of its own)."""
    return [] if active() else [f"-j{jobs}"]


def for_command(env: dict[str, str] | None) -> tuple[dict[str, str] | None, tuple[int, ...]]:
    """The environment and inherited descriptors that let a command's makes join the
    jobserver (unchanged when there is none)."""
    if not active():
        return env, ()
    read, write = _PIPE
    base = dict(os.environ if env is None else env)
    base["MAKEFLAGS"] = f"-j{_JOBS} --jobserver-auth={read},{write}"
    return base, (read, write)
