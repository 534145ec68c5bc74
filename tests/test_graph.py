"""The doit graph, loaded by doit's own loader and run for real on a small synthetic project
whose tarballs come from a local HTTP server."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doit.loader import load_doit_config, load_tasks

from conftest import make_tar, sha
from toolchain.build import machine, registry
from toolchain.tasks import Context, _builds
from toolchain.sources import recipes, store

REPO = Path(__file__).resolve().parent.parent
T = next(iter(recipes.load().targets))  # any target: the source trees are the same for all
PATCH = """From: test
Subject: change greeting

Upstream: not for upstream (test)
---
--- a/hello.c
+++ b/hello.c
@@ -1 +1 @@
-hello
+{greeting}
"""


def doit(*args: str, cwd: Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def test_loader_sees_families_and_target_subtasks(tmp_path, monkeypatch):
    monkeypatch.setenv("TOOLCHAIN_OUT", str(tmp_path / "out"))
    import importlib
    sys.path.insert(0, str(REPO))
    dodo = importlib.import_module("dodo")
    importlib.reload(dodo)
    config = load_doit_config(vars(dodo))
    tasks = {t.name: t for t in load_tasks(vars(dodo))}
    r = recipes.load()
    assert {f"toolchain:{t}" for t in r.targets} | {"download", "settings"} <= set(tasks)
    for name, package in r.packages.items():
        v = package.versions[package.default]
        assert f"fetch:{v.key}" in tasks and f"source:{v.key}" in tasks
        assert all(f"source:{v.key}" in tasks[f"sources:{t}"].task_dep for t in r.targets)
        local = {str(p.path) for p in v.patches if not p.remote}
        assert local <= set(tasks[f"source:{v.key}"].file_dep)  # patch edits redo it
    # a musl change reaches musl and what follows it, never binutils or all-gcc
    t = next(iter(r.targets))
    musl_marker = f"src/musl-{r.packages['musl'].default}/.musl-toolchain-source.json"

    def reads(task, suffix):
        return any(d.endswith(suffix) for d in tasks[task].file_dep)
    assert reads(f"musl:{t}", musl_marker) and reads(f"libgcc_static:{t}", musl_marker)
    assert not reads(f"binutils:{t}", musl_marker) and not reads(f"gcc_core:{t}", musl_marker)
    assert reads(f"gcc:{t}", "stamps/musl.json") and reads(f"hello:{t}", "stamps/gcc.json")
    assert not reads(f"gcc_core:{t}", "stamps/musl.json")
    # gcc's host libraries wait for nothing of the target: they build beside binutils
    assert reads(f"gcc_core:{t}", "stamps/gcc_libs.json") and reads(f"gcc_core:{t}", "stamps/binutils.json")
    assert not any(d.endswith(".json") and "/stamps/" in d for d in tasks[f"gcc_libs:{t}"].file_dep)
    assert reads(f"toolchain:{t}", "stamps/package.json")
    # doit keeps file_dep as a set: the tasks that make it are also named in task_dep, in the
    # order they should start, the same in every run (gcc_core's longest chain first)
    made_by = {target: name for name, task in tasks.items() for target in task.targets}
    for name, task in tasks.items():
        if ":" in name and name.split(":")[0] in registry.BY_NAME:
            assert set(task.task_dep) == {made_by[d] for d in task.file_dep if d in made_by}, name
    key = {p: r.packages[p].versions[r.packages[p].default].key for p in ("gcc", "gmp", "mpfr", "mpc")}
    assert tasks[f"gcc_core:{t}"].task_dep == [*(f"source:{key[p]}" for p in ("gcc", "gmp", "mpfr", "mpc")),
                                               f"gcc_libs:{t}", f"binutils:{t}", f"linux_headers:{t}"]
    assert config["dep_file"].endswith(".doit-toolchain.db") and config["backend"] == "sqlite3"
    assert config["dep_file"].startswith(str(tmp_path / "out"))
    # a toolchain for another machine (canadian on this x86_64 builder): its programs only,
    # the target's files copied from its twin, which is finished first with stage 0
    if machine.build_machine()[0] == "EM_X86_64":
        c = "aarch64@portable-aarch64"
        assert {f"target_files:{c}", f"binutils:{c}", f"gcc_core:{c}", f"gcc:{c}", f"package:{c}"} <= set(tasks)
        assert not {f"musl:{c}", f"hello:{c}", f"linux_headers:{c}", f"ncurses:{c}"} & set(tasks)
        assert reads(f"gcc:{c}", f"build/{c}/stamps/gcc_core.json")
        assert reads(f"gcc_libs:{c}", f"build/{c}/stamps/target_files.json")
        assert reads(f"gcc_core:{c}", f"build/{c}/stamps/gcc_libs.json")
        assert reads(f"target_files:{c}", "build/aarch64/stamps/package.json")
        assert reads(f"package:{c}", f"build/{c}/stamps/gcc.json")
        assert not reads(f"package:{c}", f"build/{c}/stamps/hello.json")
        # a portable build for this machine keeps every stage, and its own musl
        assert reads(f"gcc:x86_64@portable", "build/x86_64@portable/stamps/musl.json")
        assert "target_files:x86_64@portable" not in tasks


def test_doit_list_shows_families(tmp_path):
    r = doit("list", f"out={tmp_path}/out")
    assert r.returncode == 0, r.stderr
    names = [line.split()[0] for line in r.stdout.splitlines()]
    assert names == sorted(set(names))                    # families only, once each, in order
    assert set(names) == {s.name for s in registry.STAGES} | {"download", "fetch", "settings", "source", "sources",
                                                            "toolchain"}
    r = doit("list", "--all", f"out={tmp_path}/out")
    listed = {line.split()[0] for line in r.stdout.splitlines()}
    ctx = Context({"out": f"{tmp_path}/out"})
    wanted = {f"{family}:{b.name}" for b in _builds(ctx)
              for family in [s.name for s in registry.stages_of(b.kind)] + ["sources", "toolchain"]}
    unwanted = {f"{s.name}:{b.name}" for b in _builds(ctx) for s in registry.STAGES} - wanted
    assert wanted <= listed and not unwanted & listed and len(_builds(ctx)) == len(recipes.load().builds())
    assert any(name.startswith("toolchain:") and "@" in name for name in listed)    # a host's toolchains


def test_bad_setting_is_one_clear_error(tmp_path):
    r = doit("list", "jbos=3", f"out={tmp_path}/out")
    assert r.returncode != 0
    assert "unknown setting 'jbos'" in r.stderr and "did you mean 'jobs'" in r.stderr
    assert "Traceback" not in r.stderr
    r = doit("list", "gcc=1.0", f"out={tmp_path}/out")
    assert "gcc version '1.0'" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture
def project(tmp_path, server):
    """Recipes for all packages pointing at the local server, and a musl patch."""
    rdir, pdir = tmp_path / "recipes", tmp_path / "patches"
    rdir.mkdir()
    shutil.copy(REPO / "recipes" / "targets.yaml", rdir)
    for name in recipes.PACKAGES:
        data = make_tar({"hello.c": b"hello\n"}, top=f"{name}-1.0")
        server.routes[f"/{name}-1.0.tar.gz"] = [("file", data)]
        patches = ""
        if name == "musl":
            patches = ("    patches:\n      - file: 0001-greeting.patch\n        why: test\n"
                       "        upstream: none\n")
            (pdir / "musl" / "1.0").mkdir(parents=True)
            (pdir / "musl" / "1.0" / "0001-greeting.patch").write_text(PATCH.format(greeting="hi"))
        (rdir / f"{name}.yaml").write_text(
            f'package: {name}\nhomepage: https://example.invalid/\ndefault: "1.0"\nversions:\n'
            f'  "1.0":\n    locations:\n      - url: {server.url}/{name}-1.0.tar.gz\n'
            f"        sha256: {sha(data)}\n        hash_from: test\n{patches}")
    args = [f"out={tmp_path}/out", f"distfiles={tmp_path}/dist", f"recipes={rdir}", "debian=0"]
    return tmp_path, args


def ran(output: str) -> set[str]:
    return {line[3:].strip() for line in output.splitlines() if line.startswith(".  ")}


def test_full_graph_runs_is_incremental_and_redoes_only_a_patched_tree(project, server):
    tmp, args = project
    r = doit(f"sources:{T}", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {f"fetch:{p}-1.0" for p in recipes.PACKAGES} <= ran(r.stdout)
    assert (tmp / "out" / "src" / "musl-1.0" / "hello.c").read_text() == "hi\n"
    assert (tmp / "out" / "src" / "gcc-1.0" / "hello.c").read_text() == "hello\n"
    assert "sources ready" in r.stdout

    requests_before = len(server.log)
    r = doit(f"sources:{T}", *args)
    assert r.returncode == 0
    assert ran(r.stdout) == {f"sources:{T}"}  # only the (never up-to-date) summary
    assert len(server.log) == requests_before

    stale = tmp / "out" / "src" / ".musl-1.0.tmp-killed"   # what a killed run leaves behind
    (stale / "tree").mkdir(parents=True)
    (stale / store.TMP_MARKER).write_text("")
    foreign = tmp / "out" / "src" / ".musl-1.0.tmp-mine"   # the same name, but not ours
    (foreign / "notes").mkdir(parents=True)
    (tmp / "patches" / "musl" / "1.0" / "0001-greeting.patch").write_text(PATCH.format(greeting="howdy"))
    r = doit(f"sources:{T}", *args)
    assert r.returncode == 0
    assert ran(r.stdout) == {"source:musl-1.0", f"sources:{T}"}
    assert (tmp / "out" / "src" / "musl-1.0" / "hello.c").read_text() == "howdy\n"
    assert not stale.exists()
    assert (foreign / "notes").is_dir()


def test_failing_patch_names_patch_and_hunk_and_leaves_no_tree(project):
    tmp, args = project
    (tmp / "patches" / "musl" / "1.0" / "0001-greeting.patch").write_text(
        PATCH.format(greeting="hi").replace("-hello", "-goodbye"))
    r = doit("source:musl-1.0", *args)
    assert r.returncode != 0
    out = r.stdout + r.stderr
    assert "0001-greeting.patch" in out and "does not apply" in out
    assert "-goodbye" in out  # the rejected hunk
    assert not (tmp / "out" / "src" / "musl-1.0").exists()
    assert not [p for p in (tmp / "out" / "src").iterdir() if p.name.startswith(".musl-1.0.tmp")]


def test_download_then_offline(project, server):
    tmp, args = project
    r = doit("download", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in (tmp / "dist").glob("*.tar.gz")) == sorted(f"{p}-1.0.tar.gz" for p in recipes.PACKAGES)
    server.routes.clear()  # the network is gone
    shutil.rmtree(tmp / "out")
    r = doit(f"sources:{T}", *args, "offline=1")
    assert r.returncode == 0, r.stdout + r.stderr
    (tmp / "dist" / "mpc-1.0.tar.gz").unlink()
    shutil.rmtree(tmp / "out")
    r = doit(f"sources:{T}", *args, "offline=1")
    assert r.returncode != 0
    assert "mpc-1.0.tar.gz" in r.stdout + r.stderr and "offline" in r.stdout + r.stderr
