"""The input key: the same inputs give the same key in any folder; any input changed, a new key."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from toolchain import tasks
from toolchain.build import executor
from toolchain.build.stages import gcc
from toolchain.cache import key

REPO = Path(__file__).resolve().parent.parent
SHA = "ab" * 32


def fetched(out: Path, sha: str = SHA, variant: str = "", only: str = "") -> None:
    """Fetch stamps as `doit sources` leaves them (a verified file per version), without
    fetching: the key reads only the sha256 and variant recorded."""
    ctx = tasks.Context({"out": str(out)}, env={})
    for package, v in ctx.recipes.packages.items():
        for version in v.versions.values():
            if only and package != only:
                continue
            stamp = out / "state" / "fetch" / f"{version.key}.json"
            stamp.parent.mkdir(parents=True, exist_ok=True)
            stamp.write_text(json.dumps({"source": {"sha256": sha, "variant": variant, "path": str(out / "x")},
                                         "patches": {p.file: {"sha256": "cd" * 32} for p in version.patches
                                                     if p.remote}}))


def build(out: Path, name: str, **settings: str):
    ctx = tasks.Context({"out": str(out), **settings}, env={})
    return next(b for b in tasks._builds(ctx) if b.name == name)


@pytest.fixture(autouse=True)
def no_rustc(monkeypatch):
    """Rust's probe asks rustc (a second each): a fixed answer here, the same for every build."""
    monkeypatch.setattr(key, "_probe", lambda stage, b: {"rustc": "rustc 1.0 (test)"})


def test_the_same_inputs_give_the_same_key_in_any_folder(tmp_path):
    for out in (tmp_path / "a", tmp_path / "clone" / "out"):
        fetched(out)
    a, b = build(tmp_path / "a", "aarch64"), build(tmp_path / "clone" / "out", "aarch64")
    assert key.key(a) == key.key(b)
    text = json.dumps(key.inputs(a))
    assert str(tmp_path) not in text and key.OUT in text          # paths under out are relative to it
    assert len(key.key(a)) == 64 and key.key(a) != key.key(build(tmp_path / "a", "x86_64"))


def test_each_input_changes_the_key(tmp_path, monkeypatch):
    out = tmp_path / "out"
    fetched(out)
    first = key.key(build(out, "aarch64"))
    fetched(out, sha="ef" * 32, only="musl")                            # another musl tarball
    assert key.key(build(out, "aarch64")) != first
    fetched(out)
    fetched(out, variant="dfsg", only="gcc")                            # Debian's tree, not upstream's
    assert key.key(build(out, "aarch64")) != first
    fetched(out)
    assert key.key(build(out, "aarch64")) == first                      # back to the same inputs
    monkeypatch.setattr(gcc, "FLAGS", [*gcc.FLAGS, "--enable-something"])   # a configure flag
    assert key.key(build(out, "aarch64")) != first
    monkeypatch.undo()
    monkeypatch.setattr(key, "_probe", lambda stage, b: {"rustc": "rustc 1.0 (test)"})
    assert key.key(build(out, "aarch64")) == first
    real = executor.code_hash
    monkeypatch.setattr(executor, "code_hash", lambda stage: real(stage) + ("x" if stage.name == "musl" else ""))
    assert key.key(build(out, "aarch64")) != first                     # the code of a stage


def test_another_version_selected_is_another_key(tmp_path):
    out = tmp_path / "out"
    fetched(out)
    ctx = tasks.Context({"out": str(out)}, env={})
    package = next(p for p in ctx.recipes.packages.values() if len(p.versions) > 1)
    other = next(v for v in package.versions if v != package.default)
    assert key.key(build(out, "aarch64", **{package.name: other})) != key.key(build(out, "aarch64"))


def test_a_portable_toolchain_is_keyed_by_its_stage0_not_the_build_machine(tmp_path, monkeypatch):
    out = tmp_path / "out"
    fetched(out)
    portable = build(out, "aarch64@portable")
    assert set(key.inputs(portable)["compiled_by"]) == {"stage0"}
    assert key.inputs(portable)["compiled_by"]["stage0"] == key.key(build(out, "x86_64"))
    before = key.key(portable), key.key(build(out, "aarch64"))
    key.build_machine_compiler.cache_clear()
    monkeypatch.setattr(key, "_first_line", lambda cmd: f"{cmd[0]} 99.1")   # another build machine gcc
    try:
        after = key.key(build(out, "aarch64@portable")), key.key(build(out, "aarch64"))
    finally:
        key.build_machine_compiler.cache_clear()
    # a new stage 0 (compiled by that gcc) means a new portable key: the chain is in the key
    assert after[0] != before[0] and after[1] != before[1]


def test_the_key_command(tmp_path):
    out = tmp_path / "out"
    run = lambda *a: subprocess.run([sys.executable, "-m", "toolchain", "key", *a], cwd=REPO,
                                    capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    r = run("aarch64", f"out={out}")
    assert r.returncode == 2 and "has not been fetched" in r.stderr and "doit sources:aarch64" in r.stderr
    assert "Traceback" not in r.stderr
    fetched(out)
    r = run("aarch64", f"out={out}")
    assert r.returncode == 0 and len(r.stdout.strip()) == 64, r.stderr
    r2 = run("aarch64", "--inputs", f"out={out}")
    assert json.loads(r2.stdout)["build"] == "aarch64"
    r = run("aarch64@nowhere", f"out={out}")
    assert r.returncode == 2 and "unknown host 'nowhere'" in r.stderr
