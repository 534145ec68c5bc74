"""Wide-character ncurses, static, into the sysroot, with a host `tic` built from the same
source to compile terminfo entries for the terminals people use."""
from __future__ import annotations

import shutil

from ...checks import gates
from ..context import Build
from ..runner import Status, clean_dir
from ..stage import Stage
from . import targetlib

# terminfo entries installed into the sysroot: the terminals people actually use
TERMINALS = ("ansi", "dumb", "linux", "vt100", "vt102", "vt220", "xterm", "xterm-256color",
             "xterm-color", "screen", "screen-256color", "tmux", "tmux-256color", "rxvt",
             "rxvt-unicode", "rxvt-unicode-256color", "putty", "putty-256color", "alacritty",
             "foot", "kitty", "st-256color", "konsole", "gnome", "gnome-256color")

TERMINFO_DIRS = "/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo"
NCURSES_FLAGS = ["--prefix=/usr", "--enable-widec", "--without-shared", "--with-normal",
                 "--without-debug", "--without-ada", "--without-cxx-binding", "--without-manpages",
                 "--without-tests", "--without-progs", "--enable-pc-files",
                 "--with-pkg-config-libdir=/usr/lib/pkgconfig", "--enable-overwrite",
                 f"--with-terminfo-dirs={TERMINFO_DIRS}",
                 "--with-default-terminfo-dir=/usr/share/terminfo", "--disable-stripping",
                 # configure asks the build machine's /etc/passwd whether this is a "conventional
                 # multiuser system" (in a container it is not, and root's and setuid programs'
                 # use of $TERMINFO and friends silently changes): the target system is one
                 "cf_cv_multiuser=yes"]
# ncurses picks `ar -curvU` (real member timestamps) when ar knows U: deterministic instead
NCURSES_MAKE = ["ARFLAGS=-curvD"]
# the host tic (built with the build machine's compiler, never installed)
HOST_TIC_FLAGS = ["--without-shared", "--without-ada", "--without-cxx-binding", "--without-manpages",
                  "--without-tests", "--enable-widec", "--without-debug"]


def run(b: Build, st: Status) -> None:
    src, host_sh = b.src("ncurses"), b.steps("ncurses", st)
    # 1. a host tic from the same source, to compile terminfo entries at build time
    host = b.work / "host-ncurses"
    obj = clean_dir(b.work / "obj-ncurses-host")
    host_sh.run([b.configure(src, obj), f"--prefix={host}", *HOST_TIC_FLAGS], cwd=obj, step="configure host tic")
    host_sh.run(b.make("-C", "include"), cwd=obj, step="host headers")
    host_sh.run(b.make("-C", "ncurses"), cwd=obj, step="host libncurses")
    host_sh.run(b.make("-C", "progs", "tic"), cwd=obj, step="host tic")
    tic = obj / "progs" / "tic"
    # 2. the target library, static only
    sh = b.steps("ncurses", st, b.target_env())
    obj = clean_dir(b.work / "obj-ncurses")
    sh.run([b.configure(src, obj), f"--host={b.triple}", f"--build={targetlib.build_triple(src)}", *NCURSES_FLAGS],
           cwd=obj, step="configure")
    if "#define USE_ROOT_ENVIRON 1" not in (obj / "include" / "ncurses_cfg.h").read_text():
        raise gates.GateError("configure did not take cf_cv_multiuser=yes (no USE_ROOT_ENVIRON)",
                              where=str(obj / "include" / "ncurses_cfg.h"),
                              fix="find how this ncurses decides it builds for a multiuser system")
    sh.run(b.make(*NCURSES_MAKE), cwd=obj, step="make")
    sh.run(["make", *NCURSES_MAKE, f"DESTDIR={b.sysroot}", "install.libs", "install.includes"], cwd=obj,
           step="install")
    # libedit (and others) look for -lncurses / -lcurses: point them at the wide library
    lib = b.sysroot / "lib"
    for alias in ("libncurses.a", "libcurses.a"):
        if not (lib / alias).exists():
            (lib / alias).symlink_to("libncursesw.a")
    # 3. terminfo for common terminals, compiled by the host tic
    terminfo = b.sysroot / "share" / "terminfo"
    shutil.rmtree(terminfo, ignore_errors=True)   # a re-run writes the same links as the first
    terminfo.mkdir(parents=True)
    host_sh.run([str(tic), "-x", "-e", ",".join(TERMINALS), "-o", str(terminfo),
                 str(src / "misc" / "terminfo.src")], cwd=obj, env={**host_sh.env, "TERMINFO": str(terminfo)},
                step="terminfo")
    # gates
    gates.target_archive(lib / "libncursesw.a", b.target, at_least=50)
    targetlib.no_shared_objects(b, "libncurses*")
    if not (terminfo / "x" / "xterm-256color").is_file():
        raise gates.GateError("xterm-256color was not compiled", where=str(terminfo))
    libs = targetlib.pkg_config(b, "--static", "--libs", "ncursesw")
    if "-lncursesw" not in libs:
        raise gates.GateError(f"pkg-config --libs ncursesw gives {libs!r}", where="ncursesw.pc")


def config(b: Build) -> dict:
    return {"configure": NCURSES_FLAGS, "make": NCURSES_MAKE, "host_tic": HOST_TIC_FLAGS,
            "terminals": list(TERMINALS), "env": b.target_vars()}


STAGES = (
    Stage("ncurses", "wide-character ncurses, static, with terminfo for common terminals, into the sysroot",
          run, reads=("ncurses",), after=("gcc",), config=config, quick_repro=True),
)
