"""gcc, in one build tree staged as musl-cross-make does: the compiler (all-gcc) here, a static
libgcc in musl's module (it needs musl's headers), then after musl the rest with the target
libraries, here again. The host libraries and build tools that all-gcc needs come first in a
stage of their own, which needs neither binutils nor a target header: with `doit -n 2` it
builds beside binutils."""
from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ...checks import gates
from .. import pch
from ..context import Build
from ..runner import Status, clean_dir
from ..stage import CANADIAN, HERE, Stage

FLAGS = ["--with-native-system-header-dir=/include",
         "--disable-nls", "--disable-multilib", "--disable-bootstrap", "--disable-werror",
         "--disable-libsanitizer", "--enable-tls", "--enable-initfini-array",
         # PIE by default (as Alpine): `gcc -static-pie x.c` just works, and the static
         # libraries built with it can go into static-pie programs (Rust's default)
         "--enable-default-pie",
         "--enable-libstdcxx-time=rt", "--disable-gnu-indirect-function",
         "--with-pkgversion=musl-toolchain"]
# Static programs load no plugins: no gcc plugins, and no LTO plugin for ld (gcc's configure
# sets HAVE_LTO_PLUGIN when liblto_plugin was built, and the driver then hands it to ld on
# every link, gcc-ar to ar). Without it -flto makes fat objects and links through collect2
# and lto-wrapper. zstd (LTO compression) only from our sysroot, which has none.
STATIC_FLAGS = ["--disable-plugin", "--disable-lto-plugin", "--without-zstd"]
# Answers for the target libraries' configure scripts, as autoconf cache variables in the
# environment (a configure option would enter gcc -v's "Configured with" and change the driver):
# libstdc++ then builds no precompiled <bits/stdc++.h>, 4 files and ~700 MB that `make install`
# never installs (install-pch is not part of it), about 25 CPU seconds per target.
TARGET_CONFIGURE_ANSWERS = {"glibcxx_cv_prog_CXX_pch": "no"}


def canadian_flags(b: Build) -> list[str]:
    """Where the twin's libstdc++ headers are: <prefix>/<triple>/include/c++/<version>, named
    as a cross compiler names it, under $(libsubdir), which gcc's own make expands. Only then
    are they searched before musl's headers, as libstdc++'s #include_next needs: a path under
    the sysroot is searched after gcc's own headers, and gcc's default when host = target is
    a native compiler's <prefix>/include/c++ (both seen on aarch64@portable-aarch64)."""
    if b.kind != CANADIAN:
        return []
    return [f"--with-gxx-include-dir=$(libsubdir)/$(libsubdir_to_prefix){b.triple}/include/c++/$(version)"]


def configure_flags(b: Build) -> list[str]:
    langs = ",".join(b.settings.languages)
    return [f"--target={b.triple}", "--prefix=", f"--with-sysroot=/{b.triple}", FLAGS[0],
            f"--enable-languages={langs}", *FLAGS[1:], *b.target.gcc_configure,
            *(STATIC_FLAGS if b.stage0 else []), *b.host_configure(), *canadian_flags(b)]


def make_vars(b: Build) -> list[str]:
    """Make variables (not configure options, which gcc records in the driver) for the real
    sysroot while building: its headers for fixincludes, and --sysroot for the target
    libraries, whose debug info gets the output folder mapped."""
    # gcc's top Makefile passes no command-line variables down (MAKEOVERRIDES=), but
    # TARGET-gcc is the goal list of its sub-make in gcc/, which takes assignments too
    # LIMITS_H_TEST: gcc makes its <limits.h> a wrapper of the libc's only if that exists
    # when all-gcc runs: never in a cold build (musl comes later), but in a rebuild in an out
    # folder that has musl, which then changed libstdc++ and libgomp too. Pinned as cold.
    return [f"TARGET-gcc=all BUILD_SYSTEM_HEADER_DIR={b.sysroot / 'include'} LIMITS_H_TEST=false",
            f"SYSROOT_CFLAGS_FOR_TARGET=--sysroot={b.sysroot}",
            f"DEBUG_PREFIX_CFLAGS_FOR_TARGET={b.prefix_map}"]


def obj_dir(b: Build) -> Path:
    return b.work / "obj-gcc"


def shadow_source(b: Build) -> Path:
    """gcc's source with gmp/mpfr/mpc beside it (built in-tree), as a folder of symlinks, so
    the shared, verified source tree is never modified and targets can build at once."""
    shadow = clean_dir(b.work / "src-gcc")
    gcc = b.src("gcc")
    for entry in gcc.iterdir():
        (shadow / entry.name).symlink_to(entry)
    for lib in ("gmp", "mpfr", "mpc"):
        (shadow / lib).symlink_to(b.src(lib))
    return shadow


# What configure-gcc depends on in gcc's Makefile.def, less binutils (gas, ld, gold): built
# by gcc_libs beside binutils (lto-plugin builds libiberty too). A maybe- goal is nothing for
# a module this tree or configuration has not (isl, gettext, libiconv).
CONFIGURE_GCC_NEEDS = ("gmp", "mpfr", "mpc", "isl", "gettext", "libiconv", "lto-plugin")
# What all-gcc needs besides (for the machine gcc runs on or builds on): built by gcc_core
# beside gcc's own configure, ~20 s of one shell script that would otherwise leave a core
# idle; beside binutils both cores are busy anyway.
ALL_GCC_NEEDS_TOO = ("libiberty", "zlib", "libbacktrace", "libcpp", "libcody", "libdecnumber", "fixincludes",
                     "libgrust", "build-libiberty", "build-libcpp", "build-fixincludes", "build-texinfo",
                     "build-bison", "build-flex")
# Modules gcc's tree builds twice, for the host (the programs) and again in build-<triple>/
# for the build machine (the generators, and fixincludes run on the sysroot's headers).
BUILD_TWINS = ("libiberty", "libcpp", "fixincludes")
# How the top Makefile builds for the build machine, as its configure writes it when build =
# host: X_FOR_BUILD = $(X) for the compilers, the host's own values for the flags.
_SAME_COMPILERS = ("CC", "CXX")
_SAME_FLAGS = ("CFLAGS", "CXXFLAGS", "CPPFLAGS")


def share_build_twins(obj: Path) -> tuple[str, ...]:
    """When the tree builds for the build machine with the host's compiler and flags, its
    build-<triple>/<twin> are links to the host's modules: the same sources compiled the same
    way twice (~26 CPU s on aarch64), used only by programs that run while building, whose
    output does not depend on how they were compiled. Returns the twins that are links; a
    canadian build (another compiler for the build machine) keeps its own."""
    values = dict(re.findall(r"^(\w+) = ?(.*?)\s*$", (obj / "Makefile").read_text(), re.M))
    same = all(values.get(f"{var}_FOR_BUILD") == f"$({var})" for var in _SAME_COMPILERS) and \
        all(values.get(f"{var}_FOR_BUILD", "") == values.get(var, "") for var in _SAME_FLAGS)
    if not same or "BUILD_SUBDIR" not in values:
        return ()
    build = obj / values["BUILD_SUBDIR"]
    build.mkdir(exist_ok=True)
    for twin in BUILD_TWINS:
        link = build / twin
        if not (link.exists() or link.is_symlink()):     # an earlier attempt's stays as it is
            link.symlink_to(Path("..") / twin)
    return tuple(t for t in BUILD_TWINS if (build / t).is_symlink())


def run_libs(b: Build, st: Status) -> None:
    """The build tree configured, and what gcc's own configure needs of it, which reads
    nothing of the target (its binutils, headers or libc)."""
    sh = b.steps("gcc_libs", st, b.host_env())
    shadow = shadow_source(b)
    obj = clean_dir(obj_dir(b))
    sh.run([b.configure(shadow, obj), *configure_flags(b)], cwd=obj, step="configure")
    sh.run(b.make(*make_vars(b), *(f"maybe-all-{part}" for part in CONFIGURE_GCC_NEEDS)), cwd=obj,
           step="make gmp mpfr mpc lto-plugin")


# The first lines most of gcc's sources share, precompiled while all-gcc builds (pch.py):
# the includes a header made of a source's first lines may end with, and those it may only
# contain (config.h alone is not worth one). The last two start the generated
# gimple-match-N.cc and generic-match-N.cc (a 5,000-line header that includes 34 others).
PCH_HEADERS = ("coretypes.h", "backend.h", "analyzer/common.h", "gimple-match-auto.h", "generic-match-auto.h")
PCH_THROUGH = ("config.h", "system.h")


def core_env(b: Build, headers: Path) -> dict[str, str]:
    """The host environment, with precompiled headers kept in `headers` when they are on."""
    env = b.host_env()
    if pch.on(b.settings):
        env.update(pch.environment(b.settings.state, headers, PCH_HEADERS, env["PATH"], PCH_THROUGH))
    return env


def run_core(b: Build, st: Status) -> None:
    # made new on every run: a header is never checked against the files it was made from
    headers = clean_dir(b.work / "pch-gcc")
    sh = b.steps("gcc_core", st, core_env(b, headers))
    obj = obj_dir(b)
    shutil.rmtree(obj / "gcc", ignore_errors=True)     # a re-run starts gcc/ from clean
    (b.sysroot / "include").mkdir(parents=True, exist_ok=True)
    b.link_usr()
    # gcc/'s configure beside the host libraries all-gcc also needs: two makes at once, on
    # goals that share only libiberty, which gcc_libs built (nothing left to do there). One
    # make for all-gcc would configure and build the libraries first and gcc/ last, alone
    # (seen: a core idle for its ~20 s, aarch64); make -j has no priorities to say otherwise.
    # a shared twin is made by its host module here; all-gcc then finds it up to date (two
    # makes in one folder at once, building, would race)
    shared = {f"build-{twin}" for twin in share_build_twins(obj)}
    libs = [part for part in ALL_GCC_NEEDS_TOO if part not in shared]
    with ThreadPoolExecutor(2) as pool:
        both = [pool.submit(sh.run, b.make(*make_vars(b), "configure-gcc"), cwd=obj, step="configure-gcc"),
                pool.submit(sh.run, b.make(*make_vars(b), *(f"maybe-all-{part}" for part in libs)),
                            cwd=obj, step="make libiberty libcpp ...")]
        for done in both:
            done.result()            # the first failure, once both have ended
    sh.run(b.make(*make_vars(b), "all-gcc"), cwd=obj, step="make all-gcc")
    with sh.log.open("a") as log:       # no object's dependencies name them: gone when done
        log.write(pch.summary(headers) + "\n")
    shutil.rmtree(headers)
    sh.run(["make", *make_vars(b), f"DESTDIR={b.prefix}", "install-gcc"], cwd=obj, step="install-gcc")
    if b.kind == CANADIAN:     # they run on the other machine only: static programs for it
        for program in (b.tool("gcc"), *sorted(str(p) for p in (b.prefix / "libexec").rglob("cc1*"))):
            gates.static_executable(Path(program), b.stage0.target, kind="static")
        return
    machine = subprocess.run([b.tool("gcc"), "-dumpmachine"], capture_output=True, text=True).stdout.strip()
    if machine != b.triple:
        raise gates.GateError(f"-dumpmachine says {machine!r}, expected {b.triple}", where=b.tool("gcc"))
    test = clean_dir(b.work / "gate-gcc-core")
    (test / "t.c").write_text("int answer(void) { return 42; }\n")
    sh.run([b.tool("gcc"), "-c", "t.c", "-o", "t.o"], cwd=test, step="gate")
    gates.target_object(test / "t.o", b.target)


def goals(b: Build) -> tuple[str, ...]:
    """What the rest of the build tree makes: the host parts (c++tools, fixincludes), and the
    target libraries, which a canadian build has from its twin (target_files) instead."""
    return ("host",) if b.kind == CANADIAN else ("host", "target")


# Written by libgcc_static once its libgcc is built; taken by the gcc stage when it starts.
STATIC_LIBGCC_MARK = ".musl-toolchain-static-libgcc"


def keep_static_libgcc(b: Build) -> bool:
    """Clean target library folders, except libgcc's when libgcc_static built it last: its
    objects are the ones a clean build makes (configured and compiled the same; measured:
    every object, libgcc_eh.a, libgcov.a and libgcc_s.so equal, aarch64), so make only adds
    the shared ones, as musl-cross-make's tree does. Its mark is taken now: an attempt of
    this stage that fails leaves none, and the next one starts libgcc from clean too."""
    target = obj_dir(b) / b.triple
    libgcc = target / "libgcc"
    keep = (libgcc / STATIC_LIBGCC_MARK).is_file()
    for entry in (sorted(target.iterdir()) if target.is_dir() else ()):
        if keep and entry == libgcc:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if keep:
        (libgcc / STATIC_LIBGCC_MARK).unlink()
        # built static-only, libgcc.a also holds the unwinder, which with shared libraries
        # enabled goes to libgcc_eh.a instead: made again from the same objects
        (libgcc / "libgcc.a").unlink(missing_ok=True)
    return keep


def run_rest(b: Build, st: Status) -> None:
    """The rest of gcc (libgcc with libgcc_eh and libgcc_s, libstdc++, ...) now that musl
    exists; then the static libgcc archives into the sysroot."""
    sh = b.steps("gcc", st, {**b.host_env(), **TARGET_CONFIGURE_ANSWERS})
    obj = obj_dir(b)
    keep_static_libgcc(b)
    # all-host all-target and install-host install-target are what `all` and `install` run, but
    # through a recursive make that would drop our make variables (MAKEOVERRIDES=)
    sh.run(b.make(*make_vars(b), *(f"all-{g}" for g in goals(b))), cwd=obj, step="make (the rest)")
    sh.run(["make", *make_vars(b), f"DESTDIR={b.prefix}", "installdirs", *(f"install-{g}" for g in goals(b))],
           cwd=obj, step="install")
    b.remove_libtool_archives()
    if b.kind == CANADIAN:
        # host = target: gcc also installs a native compiler's <triple>-gcc, ..., which the
        # program prefix turns into <triple>-<triple>-gcc: the same files (hard links) again
        for doubled in (b.prefix / "bin").glob(f"{b.triple}-{b.triple}-*"):
            doubled.unlink()
        return
    libgcc = Path(sh.run([b.tool("gcc"), "-print-libgcc-file-name"], cwd=obj, capture=True).strip())
    for name in ("libgcc.a", "libgcc_eh.a"):
        src = libgcc.parent / name
        gates.target_archive(src, b.target)
        shutil.copy2(src, b.sysroot / "lib" / name)
        gates.target_archive(b.sysroot / "lib" / name, b.target)


def config(b: Build) -> dict:
    """The same values for the stages of the one build tree."""
    return {"configure": configure_flags(b), "make": make_vars(b), "host": b.host_compiler(), "goals": goals(b),
            "target_configure_answers": TARGET_CONFIGURE_ANSWERS}


LIBS = Stage("gcc_libs", "gcc's build tree configured; gmp, mpfr, mpc (in-tree) and lto-plugin built",
             run_libs, reads=("gcc", "gmp", "mpfr", "mpc"), after=("target_files",), config=config,
             builds=(HERE, CANADIAN))
CORE = Stage("gcc_core", "gcc's compiler proper (make all-gcc)", run_core,
             reads=("gcc", "gmp", "mpfr", "mpc"), after=("gcc_libs", "binutils", "linux_headers"),
             config=config, makes="the compiler driver and cc1", builds=(HERE, CANADIAN))
REST = Stage("gcc", "the rest of gcc: libgcc (with libgcc_eh), libstdc++; static libgcc into the sysroot",
             run_rest, after=("gcc_core", "musl"), config=config,
             makes="C and C++ compilers; the static libgcc archives in the sysroot's lib", builds=(HERE, CANADIAN))
STAGES = (LIBS, CORE, REST)   # musl's stages come between the two
