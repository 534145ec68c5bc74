"""ccache=1: the build machine's compiler through ccache, by name; off by default."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import aarch64_build
from toolchain.build import ccache, context
from toolchain.errors import ToolchainError

needs_ccache = pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache not installed (apt-get install ccache)")


build = aarch64_build


def test_off_by_default(tmp_path):
    env = build(tmp_path).host_env()
    assert not any(k.startswith("CCACHE_") for k in env)
    assert "ccache-bin" not in env["PATH"]


def test_asked_for_without_the_program_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))      # no ccache there
    with pytest.raises(ToolchainError) as e:
        build(tmp_path, ccache="1")
    assert "ccache=1" in str(e.value) and "apt-get install ccache" in str(e.value)


@needs_ccache
def test_the_host_compiler_goes_through_ccache_by_name_and_makes_the_same_object(tmp_path):
    b = build(tmp_path, ccache="1")
    env = b.host_env()
    assert "CC" not in env and "CXX" not in env        # configure still finds and records `gcc`
    found = subprocess.run(["sh", "-c", "command -v gcc"], env=env, capture_output=True, text=True).stdout.strip()
    assert found == str(b.settings.state / "ccache-bin" / "gcc")
    assert os.path.realpath(found) == os.path.realpath(shutil.which("ccache"))
    assert env["CCACHE_DIR"] == str(tmp_path / "ccache")
    (tmp_path / "t.c").write_text("int answer(void) { return 42; }\n")
    for n in (1, 2):
        subprocess.run(["gcc", "-g0", "-O2", "-c", "t.c", "-o", f"t{n}.o"], cwd=tmp_path, env=env, check=True)
    subprocess.run(["/usr/bin/gcc", "-g0", "-O2", "-c", "t.c", "-o", "plain.o"], cwd=tmp_path, check=True)
    stats = subprocess.run(["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=True).stdout
    counts = dict(line.split("\t") for line in stats.splitlines() if "\t" in line)
    assert int(counts["direct_cache_hit"]) + int(counts["preprocessed_cache_hit"]) == 1
    assert int(counts["cache_miss"]) == 1
    assert (tmp_path / "t2.o").read_bytes() == (tmp_path / "t1.o").read_bytes() == (tmp_path / "plain.o").read_bytes()


@needs_ccache
def test_the_wrapper_folder_is_made_whole_and_mended(tmp_path):
    state = tmp_path / "state"
    real = os.path.realpath(shutil.which("ccache"))
    folder = ccache.wrapper_dir(state, real)
    assert sorted(p.name for p in folder.iterdir()) == sorted(ccache.COMPILERS)
    assert ccache.wrapper_dir(state, real) == folder            # made once
    (folder / "gcc").unlink()
    (folder / "gcc").symlink_to("/bin/true")                    # stale: another ccache, say
    ccache.wrapper_dir(state, real)
    assert os.path.realpath(folder / "gcc") == real
    assert [p.name for p in state.iterdir()] == ["ccache-bin"]  # no temporary folder left


@pytest.mark.parametrize("given", [pytest.param({"ccache": "1"}, marks=needs_ccache, id="ccache=1"),
                                   pytest.param({"pch": "0"}, id="pch=0")])
def test_settings_that_change_no_byte_change_no_stages_values(tmp_path, given):
    """What a stage builds depends neither on ccache nor on precompiled headers: no stage's
    values (doit's config_changed, the cache key's inputs) change, so turning either on or
    off re-runs nothing."""
    from toolchain.build import executor, registry
    default, other = build(tmp_path), build(tmp_path, **given)
    for stage in registry.stages_of(context.HERE):
        assert executor.stage_config(other, stage.name) == executor.stage_config(default, stage.name), stage.name
