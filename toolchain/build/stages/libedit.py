"""libedit (the readline API) against ncurses, static, into the sysroot; a test program
linked through pkg-config runs."""
from __future__ import annotations

import shutil

from ...checks import gates
from ..context import Build
from ..runner import Status, clean_dir
from ..stage import Stage
from . import targetlib

LIBEDIT_FLAGS = ["--prefix=/usr", "--disable-shared", "--enable-static", "--disable-examples"]

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


def env_vars(b: Build) -> dict[str, str]:
    """The target's variables, with ncurses' wide headers found as <curses.h>."""
    return {**b.target_vars(), "CPPFLAGS": f"-I{b.sysroot / 'include' / 'ncursesw'}"}


def run(b: Build, st: Status) -> None:
    src = b.src("libedit")
    sh = b.steps("libedit", st, {**b.env(), **env_vars(b)})
    obj = clean_dir(b.work / "obj-libedit")
    sh.run([b.configure(src, obj), f"--host={b.triple}", f"--build={targetlib.build_triple(src)}", *LIBEDIT_FLAGS],
           cwd=obj, step="configure")
    sh.run(b.make(), cwd=obj, step="make")
    sh.run(["make", f"DESTDIR={b.sysroot}", "install"], cwd=obj, step="install")
    shutil.rmtree(b.sysroot / "share" / "man", ignore_errors=True)
    b.remove_libtool_archives(b.sysroot / "lib")
    lib = b.sysroot / "lib"
    gates.target_archive(lib / "libedit.a", b.target, at_least=10)
    targetlib.no_shared_objects(b, "libedit*")
    # the test program: libedit's readline API + ncurses, linked -static via pkg-config
    test = clean_dir(b.work / "libedit-test")
    (test / "edtest.c").write_text(TEST_PROGRAM)
    cflags = targetlib.pkg_config(b, "--cflags", "libedit", "ncursesw").split()
    libs = targetlib.pkg_config(b, "--static", "--libs", "libedit", "ncursesw").split()
    for flag in libs:
        if flag.startswith("-L") and not flag[2:].startswith(str(b.sysroot)):
            raise gates.GateError(f"pkg-config gives {flag}, outside the sysroot", where="libedit.pc")
    exe = test / "edtest"
    sh.run([b.tool("gcc"), "-static", "-O2", *cflags, "edtest.c", "-o", exe.name, *libs], cwd=test,
           step="link test program")
    gates.static_executable(exe, b.target, kind="static")
    gates.runs([*b.runner, str(exe)], TEST_OUTPUT, where=str(exe), stdin=TEST_INPUT,
               env={"TERMINFO": str(b.sysroot / "share" / "terminfo"), "PATH": "/usr/bin:/bin"})


STAGES = (
    Stage("libedit", "libedit (readline API) against ncurses, static, into the sysroot; a test program runs",
          run, reads=("libedit",), after=("ncurses",),
          config=lambda b: {"configure": LIBEDIT_FLAGS, "env": env_vars(b), "runner": b.runner,
                            "test": [TEST_PROGRAM, TEST_INPUT, TEST_OUTPUT]}, quick_repro=True),
)
