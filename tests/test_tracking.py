"""Change tracking, proven through doit itself on a tiny fake build: changing one value a
stage uses, or the text of the code it runs, makes exactly that stage and the stages after it
out of date, and nothing before it."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from test_graph import project, ran  # noqa: F401 - project is a fixture (recipes on a local server)
from toolchain.build import registry
from toolchain.build.context import HERE

REPO = Path(__file__).resolve().parent.parent

# A dodo.py whose stages do nothing but whose declarations are the real ones, from a copy of
# the code (`repo`) whose modules the test edits; FAKE_CONFIG ("stage,stage,...") adds a value
# to what those stages use.
FAKE_DODO = """
import dataclasses, os, sys
sys.path.insert(0, {repo!r})
from toolchain.build import registry


def fake(original, name):
    def run(b, st):
        b.prefix.mkdir(parents=True, exist_ok=True)
        if name == os.environ.get("FAKE_BURN"):    # a command that spends CPU, for the report
            from toolchain.build.runner import run as run_command
            run_command([sys.executable, "-c", "sum(range(3 * 10**7))"], log=b.log(name), cwd=b.work,
                        status=st, step="burn")
    run.__module__ = original.__module__    # the stage's code is still its module's
    return run


edited = set(filter(None, os.environ.get("FAKE_CONFIG", "").split(",")))
for name, stage in registry.BY_NAME.items():
    config = stage.config
    if name in edited:
        config = lambda b, old=stage.config: {{**old(b), "edited": 1}}
    registry.BY_NAME[name] = dataclasses.replace(stage, run=fake(stage.run, name), probe=None, config=config)
exec(compile(open({dodo!r}).read(), {dodo!r}, "exec"))
"""

# Each module a stage runs, and the first stages (in the graph) that run it: an edit to the
# module must re-run them and everything after them. Written out here, not computed by the
# code under test; a new stage module must be added (the test says so).
ALL = "linux_headers binutils gcc_libs"     # the stages that come after no other
FIRST_USER = {
    "build/context.py": ALL, "build/runner.py": ALL, "build/machine.py": ALL,
    "build/stage.py": ALL, "checks/gates.py": ALL, "checks/elf.py": ALL,
    "build/stages/binutils.py": "binutils", "build/stages/gcc.py": "gcc_libs",
    "build/stages/musl.py": "libgcc_static", "build/stages/hello.py": "hello",
    "build/stages/targetlib.py": "ncurses", "build/stages/ncurses.py": "ncurses",
    "build/stages/libedit.py": "libedit", "build/stages/rust.py": "rust_std",
    "build/stages/envfile.py": "rust_std", "build/stages/package.py": "package",
    "build/stages/linux_headers.py": "linux_headers",
    "build/stages/target_files.py": "",      # canadian builds only: no stage of toolchain:x86_64
}


def after(name: str) -> set[str]:
    """The stage and every stage that comes after it, through the declared graph."""
    found = {name}
    while True:
        more = {s.name for s in registry.stages_of(HERE) if set(s.after) & found} - found
        if not more:
            return found
        found |= more


def test_every_stage_module_is_in_the_table():
    modules = {str(p.relative_to(REPO / "toolchain")) for p in (REPO / "toolchain" / "build" / "stages").glob("*.py")}
    assert modules - {"build/stages/__init__.py"} <= set(FIRST_USER), "add the new module to FIRST_USER"


def test_one_change_reruns_exactly_its_stage_and_the_ones_after(project, tmp_path):  # noqa: F811
    tmp, args = project
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "toolchain", repo / "toolchain", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dodo.py", "recipes", "patches"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, repo / name)
    dodo = tmp_path / "fake_dodo.py"
    dodo.write_text(FAKE_DODO.format(repo=str(repo), dodo=str(repo / "dodo.py")))

    def run(config: list[str], burn: str = "") -> set[str]:
        r = subprocess.run([sys.executable, "-m", "doit", "-f", str(dodo), "toolchain:x86_64", *args],
                           cwd=tmp, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
                           env={**os.environ, "FAKE_CONFIG": ",".join(config), "FAKE_BURN": burn})
        assert r.returncode == 0, r.stdout + r.stderr
        return {t.removesuffix(":x86_64") for t in ran(r.stdout) if t.endswith(":x86_64")} - {"toolchain", "sources"}

    assert run([], burn="musl") == {s.name for s in registry.stages_of(HERE)}
    # the report has each stage's CPU time (its commands'), for benchmarks: musl's spent some
    report = json.loads((tmp / "out" / "build" / "x86_64" / "report.json").read_text())
    cpu = {name: s["cpu_seconds"] for name, s in report["stages"].items()}
    assert cpu["musl"] > 0.3 and all(0 <= c < 0.3 for n, c in cpu.items() if n != "musl"), cpu
    assert report["total_cpu_seconds"] >= cpu["musl"]
    [step] = report["stages"]["musl"]["steps"]      # and each command's, in the stage's log too
    assert step["step"] == "burn" and step["cpu_seconds"] > 0.3 and step["seconds"] >= step["cpu_seconds"] - 0.1
    assert "# burn: " in (tmp / "out" / "build" / "x86_64" / "logs" / "musl.log").read_text()
    assert run([]) == set()                       # nothing changed: nothing runs
    config: list[str] = []
    for stage in registry.stages_of(HERE):        # a value a stage uses
        config.append(stage.name)
        assert run(config) == after(stage.name), f"{stage.name}: config"
    for module, first in FIRST_USER.items():      # one line of a module's code
        path = repo / "toolchain" / module
        path.write_text(path.read_text() + "# one more line\n")
        assert run(config) == set().union(*(after(s) for s in first.split())), f"{module}: code"


def test_the_readme_task_table_is_the_registry():
    """One row per stage, in the registry's order, with its doc and what it leaves behind."""
    readme = (REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `") and ":<arch>` |" in line]
    stage_rows = [r for r in rows if r.split("`")[1].split(":")[0] in registry.BY_NAME]
    assert stage_rows == [f"| `{s.name}:<arch>` | {s.doc} | {s.makes} |" for s in registry.STAGES]
