"""Target libraries cross-built into the sysroot as static libraries: ncurses (wide
character, with a host `tic` built from the same source) and libedit against it."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from . import gates
from .context import Build
from .runner import Status, clean_dir

# terminfo entries installed into the sysroot: the terminals people actually use
TERMINALS = ("ansi", "dumb", "linux", "vt100", "vt102", "vt220", "xterm", "xterm-256color",
             "xterm-color", "screen", "screen-256color", "tmux", "tmux-256color", "rxvt",
             "rxvt-unicode", "rxvt-unicode-256color", "putty", "putty-256color", "alacritty",
             "foot", "kitty", "st-256color", "konsole", "gnome", "gnome-256color")

TERMINFO_DIRS = "/etc/terminfo:/lib/terminfo:/usr/share/terminfo:/usr/lib/terminfo"

TEST_PROGRAM = r"""#include <stdio.h>
#include <stdlib.h>
#include <curses.h>
#include <term.h>
#include <editline/readline.h>

int main(void) {
    int err = 0, n = 0;
    char *line;
    if (setupterm("xterm-256color", 1, &err) != OK) {
        printf("setupterm failed (%d)\n", err);
        return 1;
    }
    printf("colors=%d\n", tigetnum("colors"));
    using_history();
    while ((line = readline("")) != NULL) {
        add_history(line);
        printf("line %d: %s\n", ++n, line);
        free(line);
    }
    printf("history=%d last=%s\n", history_length, history_get(history_base + history_length - 1)->line);
    return 0;
}
"""
TEST_INPUT = "first\nsecond\n"
TEST_OUTPUT = "colors=256\nline 1: first\nline 2: second\nhistory=2 last=second\n"

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
LIBEDIT_FLAGS = ["--prefix=/usr", "--disable-shared", "--enable-static", "--disable-examples"]


def _build_triple(src: Path) -> str:
    return subprocess.run([str(src / "config.guess")], capture_output=True, text=True).stdout.strip()


def _no_shared_objects(b, pattern: str) -> None:
    found = [p for p in (b.sysroot / "lib").glob(pattern) if ".so" in p.name]
    if found:
        raise gates.GateError(f"shared objects were installed: {', '.join(p.name for p in found)}",
                              where=str(b.sysroot / "lib"), fix="configure the library static-only")


def _pkg_config(b, *args: str) -> str:
    env = {**os.environ, "PKG_CONFIG_SYSROOT_DIR": str(b.sysroot),
           "PKG_CONFIG_LIBDIR": str(b.sysroot / "lib" / "pkgconfig")}
    r = subprocess.run(["pkg-config", *args], capture_output=True, text=True, env=env)
    if r.returncode:
        raise gates.GateError(f"pkg-config {' '.join(args)} failed: {r.stderr.strip()}",
                              where=str(b.sysroot / "lib" / "pkgconfig"))
    return r.stdout.strip()


def stage_ncurses(b: Build, st: Status) -> None:
    src, host_sh = b.src("ncurses"), b.steps("ncurses", st)
    # 1. a host tic from the same source, to compile terminfo entries at build time
    host = b.work / "host-ncurses"
    obj = clean_dir(b.work / "obj-ncurses-host")
    host_sh.run([b.configure(src, obj), f"--prefix={host}", "--without-shared", "--without-ada",
                 "--without-cxx-binding", "--without-manpages", "--without-tests", "--enable-widec",
                 "--without-debug"], cwd=obj, step="configure host tic")
    host_sh.run(["make", f"-j{b.settings.jobs}", "-C", "include"], cwd=obj, step="host headers")
    host_sh.run(["make", f"-j{b.settings.jobs}", "-C", "ncurses"], cwd=obj, step="host libncurses")
    host_sh.run(["make", f"-j{b.settings.jobs}", "-C", "progs", "tic"], cwd=obj, step="host tic")
    tic = obj / "progs" / "tic"
    # 2. the target library, static only
    sh = b.steps("ncurses", st, b.target_env())
    obj = clean_dir(b.work / "obj-ncurses")
    sh.run([b.configure(src, obj), f"--host={b.triple}", f"--build={_build_triple(src)}", *NCURSES_FLAGS],
           cwd=obj, step="configure")
    if "#define USE_ROOT_ENVIRON 1" not in (obj / "include" / "ncurses_cfg.h").read_text():
        raise gates.GateError("configure did not take cf_cv_multiuser=yes (no USE_ROOT_ENVIRON)",
                              where=str(obj / "include" / "ncurses_cfg.h"),
                              fix="find how this ncurses decides it builds for a multiuser system")
    sh.run(["make", f"-j{b.settings.jobs}", *NCURSES_MAKE], cwd=obj, step="make")
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
    _no_shared_objects(b, "libncurses*")
    if not (terminfo / "x" / "xterm-256color").is_file():
        raise gates.GateError("xterm-256color was not compiled", where=str(terminfo))
    libs = _pkg_config(b, "--static", "--libs", "ncursesw")
    if "-lncursesw" not in libs:
        raise gates.GateError(f"pkg-config --libs ncursesw gives {libs!r}", where="ncursesw.pc")


def stage_libedit(b: Build, st: Status) -> None:
    src = b.src("libedit")
    sh = b.steps("libedit", st, {**b.target_env(), "CPPFLAGS": f"-I{b.sysroot / 'include' / 'ncursesw'}"})
    obj = clean_dir(b.work / "obj-libedit")
    sh.run([b.configure(src, obj), f"--host={b.triple}", f"--build={_build_triple(src)}", *LIBEDIT_FLAGS],
           cwd=obj, step="configure")
    sh.run(["make", f"-j{b.settings.jobs}"], cwd=obj, step="make")
    sh.run(["make", f"DESTDIR={b.sysroot}", "install"], cwd=obj, step="install")
    shutil.rmtree(b.sysroot / "share" / "man", ignore_errors=True)
    for la in (b.sysroot / "lib").glob("libedit.la"):
        la.unlink()  # libtool archives carry build paths and are not needed for static linking
    lib = b.sysroot / "lib"
    gates.target_archive(lib / "libedit.a", b.target, at_least=10)
    _no_shared_objects(b, "libedit*")
    # the test program: libedit's readline API + ncurses, linked -static via pkg-config
    test = clean_dir(b.work / "libedit-test")
    (test / "edtest.c").write_text(TEST_PROGRAM)
    cflags = _pkg_config(b, "--cflags", "libedit", "ncursesw").split()
    libs = _pkg_config(b, "--static", "--libs", "libedit", "ncursesw").split()
    for flag in libs:
        if flag.startswith("-L") and not flag[2:].startswith(str(b.sysroot)):
            raise gates.GateError(f"pkg-config gives {flag}, outside the sysroot", where="libedit.pc")
    exe = test / "edtest"
    sh.run([b.tool("gcc"), "-static", "-O2", *cflags, "edtest.c", "-o", exe.name, *libs], cwd=test,
           step="link test program")
    gates.static_executable(exe, b.target, kind="static")
    gates.runs([*b.runner, str(exe)], TEST_OUTPUT, where=str(exe), stdin=TEST_INPUT,
               env={"TERMINFO": str(b.sysroot / "share" / "terminfo"), "PATH": "/usr/bin:/bin"})


