"""Change tracking, proven through doit itself on a tiny fake build: changing one value a
stage uses, or the text of the code it runs, makes exactly that stage and the stages after it
out of date, and nothing before it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from test_graph import project, ran  # noqa: F401 - project is a fixture (recipes on a local server)
from toolchain import stages

REPO = Path(__file__).resolve().parent.parent

# A dodo.py whose stages do nothing but whose declarations are the real ones; FAKE_CHANGE
# ("stage:config,stage:code,...") edits a value a stage uses, or the code it runs.
FAKE_DODO = '''
import dataclasses, os, sys
sys.path.insert(0, {repo!r})
from toolchain import stages


def fake_run(b, st):
    b.prefix.mkdir(parents=True, exist_ok=True)


def edited_line():
    return "one more line in the stage's module"


for item in filter(None, os.environ.get("FAKE_CHANGE", "").split(",")):
    name, kind = item.split(":")
    stage = stages.BY_NAME[name]
    if kind == "config":
        stage = dataclasses.replace(stage, config=lambda b, old=stage.config: {{**old(b), "edited": 1}})
    else:
        stage = dataclasses.replace(stage, code=stage.code + (edited_line,))
    stages.BY_NAME[name] = stage
for name, stage in stages.BY_NAME.items():
    stages.BY_NAME[name] = dataclasses.replace(stage, run=fake_run, probe=None)
exec(compile(open({dodo!r}).read(), {dodo!r}, "exec"))
'''


def after(name: str) -> set[str]:
    """The stage and every stage that comes after it, through the declared graph."""
    found = {name}
    while True:
        more = {s.name for s in stages.STAGES if set(s.after) & found} - found
        if not more:
            return found
        found |= more


def test_one_change_reruns_exactly_its_stage_and_the_ones_after(project, tmp_path):  # noqa: F811
    tmp, args = project
    dodo = tmp_path / "fake_dodo.py"
    dodo.write_text(FAKE_DODO.format(repo=str(REPO), dodo=str(REPO / "dodo.py")))

    def run(changes: list[str]) -> set[str]:
        r = subprocess.run([sys.executable, "-m", "doit", "-f", str(dodo), "toolchain:x86_64", *args],
                           cwd=tmp, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                           env={**os.environ, "FAKE_CHANGE": ",".join(changes)})
        assert r.returncode == 0, r.stdout + r.stderr
        return {t.removesuffix(":x86_64") for t in ran(r.stdout) if t.endswith(":x86_64")} - {"toolchain", "sources"}

    assert run([]) == set(stages.BY_NAME)
    assert run([]) == set()                       # nothing changed: nothing runs
    changes: list[str] = []
    for stage in stages.STAGES:
        for kind in ("config", "code"):
            changes.append(f"{stage.name}:{kind}")
            assert run(changes) == after(stage.name), f"{stage.name}: {kind}"


def test_the_readme_task_table_is_the_registry():
    """One row per stage, in the registry's order, with its doc and what it leaves behind."""
    readme = (REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and ":<arch>` |" in line]
    stage_rows = [r for r in rows if r.split("`")[1].split(":")[0] in stages.BY_NAME]
    assert stage_rows == [f"| `{s.name}:<arch>` | {s.doc} | {s.makes} |" for s in stages.STAGES]
