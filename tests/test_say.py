"""Messages from tasks that doit runs at once (doit -n 3 -P process) come out as whole lines."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

DODO = """
import sys
sys.path.insert(0, {repo!r})
sys.stdout.reconfigure(line_buffering=True)     # as our dodo.py
from toolchain.say import say
DOIT_CONFIG = {{"verbosity": 2}}

def talk(n):
    for i in range(300):
        say(f"[w{{n}}] line {{i}} " + "x" * 60)
        say(f"[w{{n}}] err {{i}}", err=True)

def task_w():
    for n in range(6):
        yield {{"name": str(n), "actions": [(talk, [n])], "uptodate": [False]}}
"""


def test_lines_of_parallel_tasks_do_not_cut_into_each_other(tmp_path):
    (tmp_path / "dodo.py").write_text(DODO.format(repo=str(REPO)))
    r = subprocess.run([sys.executable, "-m", "doit", "-n", "3", "-P", "process"], cwd=tmp_path,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    lines = r.stdout.splitlines()
    whole = re.compile(r"\[w\d\] line \d+ x{60}|\[w\d\] err \d+|\.  w:\d")
    assert [line for line in lines if not whole.fullmatch(line)] == []
    assert len(lines) == 6 * 600 + 6
