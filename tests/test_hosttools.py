"""Host programs: what the selected tasks need, from the stage graph, checked before any work."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from toolchain import hosttools
from toolchain.build import machine, registry
from toolchain.build.context import CANADIAN, HERE
from toolchain.sources import recipes
from toolchain.cmdline import Request
from toolchain.errors import ToolchainError

REPO = Path(__file__).resolve().parent.parent
RECIPES = recipes.load()
TARGETS = list(RECIPES.targets)
KEYS = [v.key for v in RECIPES.select().values()]
QEMU = {n: (machine.runner(t) or [""])[0] for n, t in RECIPES.targets.items()}
EMULATED = [n for n, t in RECIPES.targets.items() if not machine.runs_natively(t)]
REQUIRED = sorted({t.program for t in hosttools.TOOLS if not t.optional and t.program != hosttools.QEMU})


def needed(*tasks: str) -> dict[str, set[str]]:
    return hosttools.work(Request("run", tasks), TARGETS, KEYS)


def fake_path(tmp_path: Path, monkeypatch, *programs: str) -> None:
    """PATH is a folder holding only these (fake) programs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for p in programs:
        (bin_dir / p).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / p).chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_needs_follow_the_stage_graph():
    t = TARGETS[0]
    assert needed() == {} and needed("settings") == {}
    assert needed("fetch:" + KEYS[0]) == {"fetch": {""}} and needed("download") == {"fetch": {""}}
    assert set(needed(f"sources:{t}")) == {"fetch", "source"}
    for stage in registry.stages_of(HERE):
        need = needed(f"{stage.name}:{t}")
        built = set(need) - {"fetch", "source"}
        assert stage.name in built and all(need[s] == {t} for s in built)
        assert all(set(registry.after(s, HERE)) <= built for s in built)   # every stage before it, too
        assert built == {stage.name} or registry.after(stage.name, HERE)   # nothing more without `after`
        assert ("source" in need) == any(registry.BY_NAME[s].reads for s in built)
    assert needed(f"target_files:{t}") == {}                   # not a stage of this kind of build
    whole = needed(f"toolchain:{t}")
    assert set(whole) == {"fetch", "source"} | {s.name for s in registry.stages_of(HERE)}
    first = registry.stages_of(HERE)[0].name
    assert whole[first] == {t}
    assert needed(first)[first] == set(TARGETS)          # a family alone: all its subtasks
    last = registry.STAGES[-1].name
    assert needed(f"toolchain:{t[0]}*")[last] == {n for n in TARGETS if n.startswith(t[0])}


def test_a_canadian_build_needs_its_own_stages_and_the_toolchains_it_copies_from():
    """x@other: the programs' stages for x@other, after stage 0's and the twin's whole
    toolchains (HERE builds); no target-code stages of its own, so no qemu for it."""
    c, s0, twin = "t@other", TARGETS[0], TARGETS[1]
    need = hosttools.work(Request("run", (f"toolchain:{c}",)), [*TARGETS, c], KEYS,
                          {c: [s0, twin]}, {c: CANADIAN})
    assert {s for s, who in need.items() if c in who} == {s.name for s in registry.stages_of(CANADIAN)}
    assert need["musl"] == {s0, twin} and need["hello"] == {s0, twin}
    assert c not in need["musl"] and "target_files" in need


def test_missing_programs_are_named_with_package_and_install_command(tmp_path, monkeypatch):
    fake_path(tmp_path, monkeypatch, "patch", "make")
    asked = EMULATED[0]
    with pytest.raises(ToolchainError) as e:
        hosttools.check(needed(f"toolchain:{asked}"), QEMU, apt=False)
    text = str(e.value)
    assert "g++" in text and "Debian package g++" in text
    assert "m4" in text and "awk" in text and "Debian package mawk" in text
    assert QEMU[asked] in text and "qemu-user-static" in text
    assert all(QEMU[n] not in text for n in EMULATED if QEMU[n] != QEMU[asked])   # not asked for
    assert "patch " not in text and "make " not in text       # those are there
    assert e.value.fix.startswith("apt-get install ") and "mawk" in e.value.fix and "patch" not in e.value.fix


def test_each_task_needs_only_its_own(tmp_path, monkeypatch):
    fake_path(tmp_path, monkeypatch)
    assert hosttools.check(needed("fetch:" + KEYS[0]), QEMU, apt=False) == []
    with pytest.raises(ToolchainError) as e:
        hosttools.check(needed(f"sources:{TARGETS[-1]}"), QEMU)
    assert "patch" in str(e.value) and "make" not in str(e.value)
    for name, target in RECIPES.targets.items():
        with pytest.raises(ToolchainError) as e:
            hosttools.check(needed(f"toolchain:{name}"), QEMU, apt=False)
        assert ("qemu" in str(e.value)) == (name in EMULATED), name   # the build machine's own run natively
    fake_path(tmp_path, monkeypatch, *REQUIRED, *filter(None, QEMU.values()))
    for name in TARGETS:          # the program alone is looked up, not its -cpu arguments
        hosttools.check(needed(f"toolchain:{name}"), QEMU, apt=False)


def test_rust_and_apt_are_optional_notes(tmp_path, monkeypatch):
    fake_path(tmp_path, monkeypatch, *REQUIRED, QEMU[EMULATED[0]])
    notes = hosttools.check(needed(f"toolchain:{EMULATED[0]}"), QEMU, apt=True)
    assert any("rustc" in n and "rustc-web" in n and "skipped" in n for n in notes)
    assert any("apt-get" in n and "Debian's source archive" in n for n in notes)
    assert not any("apt-get" in n for n in hosttools.check(needed(f"toolchain:{EMULATED[0]}"), QEMU, apt=False))


def test_qemu_is_found_by_either_debian_name_in_path_order(tmp_path, monkeypatch):
    target = RECIPES.targets[EMULATED[0]]
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, name in ((old, f"qemu-{target.qemu}-static"), (new, f"qemu-{target.qemu}")):
        folder.mkdir()
        (folder / name).write_text("#!/bin/sh\n")
        (folder / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{new}:{old}")
    assert machine.runner(target)[0] == f"qemu-{target.qemu}"            # Debian 13's name, first in PATH
    monkeypatch.setenv("PATH", f"{old}:{new}")
    assert machine.runner(target)[0] == f"qemu-{target.qemu}-static"
    monkeypatch.setenv("PATH", str(tmp_path / "none"))
    assert machine.runner(target)[0] == f"qemu-{target.qemu}-static"     # named in the error


def test_too_old_qemu_is_named_before_any_work(tmp_path, monkeypatch):
    fake_path(tmp_path, monkeypatch, *REQUIRED)
    asked = EMULATED[0]
    program = tmp_path / "bin" / QEMU[asked]

    def qemu_says(version: str) -> None:
        program.write_text(f"#!/bin/sh\necho 'qemu-x version {version} (Debian 1:{version}+dfsg-7)'\n")
        program.chmod(0o755)

    qemu_says("7.2.0")
    with pytest.raises(ToolchainError) as e:
        hosttools.check(needed(f"toolchain:{asked}"), QEMU, apt=False, qemu_min={asked: "8.1"})
    assert str(e.value).startswith("too old on this machine:")
    assert f"{QEMU[asked]} is 7.2.0" in str(e.value) and "qemu 8.1 or newer" in str(e.value)
    assert "PATH" in e.value.fix
    # only for the targets asked for; a new enough qemu passes
    hosttools.check(needed(f"toolchain:{asked}"), QEMU, apt=False, qemu_min={EMULATED[1]: "99"})
    qemu_says("10.0.13")
    hosttools.check(needed(f"toolchain:{asked}"), QEMU, apt=False, qemu_min={asked: "8.1"})
    assert RECIPES.targets["loongarch64"].qemu_min == "8.1"         # the row that needs it declares it


def test_python_without_lzma_is_named(tmp_path, monkeypatch):
    fake_path(tmp_path, monkeypatch, *REQUIRED)
    monkeypatch.setitem(sys.modules, "lzma", None)            # import lzma now fails
    with pytest.raises(ToolchainError) as e:
        hosttools.check(needed(f"sources:{TARGETS[0]}"), QEMU)
    assert "Python module lzma" in str(e.value) and "liblzma-dev" in e.value.fix


# --- through doit: before any download, and nothing for list -------------------------------

def doit(*args: str, path: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path}, stdin=subprocess.DEVNULL)


def test_doit_checks_before_any_download(tmp_path, server):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    args = [f"out={tmp_path}/out", f"distfiles={tmp_path}/d", f"mirrors={server.url}", "upstream=0", "debian=0"]
    r = doit(f"toolchain:{EMULATED[0]}", *args, path=str(empty))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: missing on this machine:")
    assert QEMU[EMULATED[0]] in r.stderr and "apt-get install patch make gcc g++" in r.stderr
    assert server.log == []                                   # nothing was downloaded
    assert not (tmp_path / "out" / "state").exists()
    # listing needs nothing; fetching needs only the network (it asks the server)
    r = doit("list", *args, path=str(empty))
    assert r.returncode == 0 and "toolchain" in r.stdout
    r = doit(*args, path=str(empty))
    assert r.returncode == 0 and "versions" in r.stdout
    r = doit(f"fetch:{KEYS[0]}", *args, path=str(empty))
    assert "missing on this machine" not in r.stderr and server.log
