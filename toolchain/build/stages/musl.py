"""musl libc into the sysroot (crt objects, libc.a and libc.so), and before it, the static
libgcc of gcc's build tree that musl links (built once musl's headers are in the sysroot)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...checks import gates
from ..context import Build, Steps
from ..runner import Status, clean_dir
from ..stage import Stage
from . import gcc


def configure_flags(b: Build) -> list[str]:
    return ["--prefix=", f"--target={b.triple}", "--syslibdir=/lib"]


def libcc(b: Build) -> Path:
    """The static libgcc musl links against: the one in gcc's build folder (libgcc_static)."""
    return gcc.obj_dir(b) / b.triple / "libgcc" / "libgcc.a"


def env_vars(b: Build) -> dict[str, str]:
    return {**b.target_vars(), "CROSS_COMPILE": f"{b.triple}-"}


def configure(b: Build, sh: Steps, obj: Path, with_libcc: bool) -> None:
    """musl's configure takes the cross compiler from the environment (its make then reads
    config.mak, so the other steps run with the host environment)."""
    env = {**b.env(), **env_vars(b)}
    if with_libcc:
        env["LIBCC"] = str(libcc(b))
    sh.run([b.configure(b.src("musl"), obj), *configure_flags(b)], cwd=obj, env=env, step="configure musl")


def run_libgcc(b: Build, st: Status) -> None:
    """musl's headers into the sysroot, then a static-only libgcc that musl can link."""
    sh = b.steps("libgcc_static", st)
    headers = clean_dir(b.work / "obj-musl-headers")
    configure(b, sh, headers, with_libcc=False)
    sh.run(["make", f"DESTDIR={b.sysroot}", "install-headers"], cwd=headers, step="musl install-headers")
    shutil.rmtree(gcc.obj_dir(b) / b.triple / "libgcc", ignore_errors=True)
    sh.run(b.make("MAKE=make enable_shared=no", *gcc.make_vars(b), "all-target-libgcc"),
           cwd=gcc.obj_dir(b), step="libgcc (static)")
    gates.target_archive(libcc(b), b.target)
    (libcc(b).parent / gcc.STATIC_LIBGCC_MARK).write_text("")    # the gcc stage may go on from here


def run(b: Build, st: Status) -> None:
    sh = b.steps("musl", st)
    obj = clean_dir(b.work / "obj-musl")
    configure(b, sh, obj, with_libcc=True)
    sh.run(b.make(f"LIBCC={libcc(b)}"), cwd=obj, step="make musl")
    sh.run(["make", f"DESTDIR={b.sysroot}", "install"], cwd=obj, step="install musl")
    lib = b.sysroot / "lib"
    # musl links its dynamic loader to /lib/libc.so, right on the target system but outside
    # the toolchain here: relative, it stays inside (and tar's safe extraction accepts it)
    for loader in lib.glob("ld-musl-*.so.1"):
        if loader.is_symlink() and os.readlink(loader) == "/lib/libc.so":
            loader.unlink()
            loader.symlink_to("libc.so")
    gates.target_archive(lib / "libc.a", b.target, at_least=1000)
    for crt in ("crt1.o", "crti.o", "crtn.o", "Scrt1.o", "rcrt1.o"):
        gates.target_object(lib / crt, b.target)


def config(b: Build) -> dict:
    return {"configure": configure_flags(b), "env": env_vars(b)}


STAGES = (
    Stage("libgcc_static", "musl's headers, then a static-only libgcc for building musl", run_libgcc,
          reads=("musl",), after=("gcc_core",), config=lambda b: {**gcc.config(b), **config(b)}),
    Stage("musl", "musl libc into the sysroot (crt objects, libc.a, libc.so)", run,
          reads=("musl",), after=("libgcc_static",), config=config, makes="the sysroot's libc",
          quick_repro=True),
)
