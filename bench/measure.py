"""Measuring a command's process tree, for the benchmarks in this folder: wall seconds, CPU
seconds (user + system of every process it ran, from the kernel's accounting at wait4), the
moments marker files appear, and a CPU timeline sampled from /proc."""
from __future__ import annotations

import collections
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def tree_cpu(root: int) -> float:
    """CPU seconds of a live process tree: each live process's own time plus that of the
    children it has reaped (which holds everything below it that has ended)."""
    procs, children = {}, collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        procs[int(entry)] = sum(int(x) for x in fields[11:15])      # utime stime cutime cstime
        children[int(fields[1])].append(int(entry))
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += procs.get(pid, 0)
        stack += children.get(pid, [])
    return total / os.sysconf("SC_CLK_TCK")


def run(cmd: list[str], cwd: Path, log: Path, marks: list[tuple[str, Path]] = (), env=None,
        every: float = 0) -> dict:
    """Run cmd; returns wall and CPU seconds, for each mark (name, file) the wall and CPU
    seconds at which the file appeared, and with `every` a timeline of (wall, CPU) samples
    that far apart. Exits with the log's tail if cmd fails."""
    started = time.monotonic()
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env)
    result = {}

    def reap():
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        result.update(wall=time.monotonic() - started, cpu=usage.ru_utime + usage.ru_stime)
    waiter = threading.Thread(target=reap)
    waiter.start()
    seen: dict[str, tuple[float, float]] = {}
    timeline: list[tuple[float, float]] = [(0.0, 0.0)]
    while waiter.is_alive():
        for name, path in marks:
            if name not in seen and path.exists():
                seen[name] = (time.monotonic() - started, tree_cpu(proc.pid))
        now = time.monotonic() - started
        if every and now - timeline[-1][0] >= every:
            timeline.append((now, tree_cpu(proc.pid)))
        waiter.join(1.0)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}); log {log}:\n" + "\n".join(tail))
    result["marks"] = seen
    if every:
        result["timeline"] = timeline + [(result["wall"], result["cpu"])]
    return result


def phases(measured: dict, marks: list[str], last: str) -> list[tuple[str, float, float]]:
    """Cut a run into phases at its marks, in the order they appeared."""
    out, wall, cpu = [], 0.0, 0.0
    for name in sorted((m for m in marks if m in measured["marks"]), key=lambda m: measured["marks"][m][0]):
        w, c = measured["marks"][name]
        out.append((name, w - wall, c - cpu))
        wall, cpu = w, c
    out.append((last, measured["wall"] - wall, measured["cpu"] - cpu))
    return out
