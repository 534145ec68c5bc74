"""Task graph of the musl cross-toolchain bootstrapper. Thin: the logic is in toolchain/.

    doit list                      tasks and their families
    doit toolchain:aarch64         fetch, verify, unpack and patch everything for aarch64
    doit download offline=0        fill the distfiles folder for a later offline=1 build
Settings are `name=value` arguments or TOOLCHAIN_<NAME> variables; see README.md.
"""
import sys

from doit import doit_cmd

from toolchain import cmdline, hosttools, interrupt
from toolchain.errors import ToolchainError
from toolchain.tasks import (Context, download_task, fetch_tasks, settings_task, source_tasks,
                             sources_tasks, stage_tasks, toolchain_tasks)

# doit's command line, when doit loads this file (not when a test imports it)
REQUEST = cmdline.parse(sys.argv[1:]) if doit_cmd._CMDLINE_VARS is not None else None
if REQUEST:
    interrupt.install()

try:
    CTX = Context(cmdline=doit_cmd._CMDLINE_VARS or {})  # doit's parsed name=value arguments
    if REQUEST:
        cmdline.check_names(REQUEST, CTX.recipes, CTX.versions)
        for note in hosttools.check_request(REQUEST, CTX):  # before any download
            print(note, file=sys.stderr)
except ToolchainError as e:
    sys.exit(f"error: {e}")

DOIT_CONFIG = CTX.doit_config()


def task_settings():
    """show settings, selected versions and targets"""
    return settings_task(CTX)


def task_fetch():
    """download and verify a package version's source and remote patches"""
    yield from fetch_tasks(CTX)


def task_source():
    """unpack a verified source safely and apply its patches"""
    yield from source_tasks(CTX)


def task_download():
    """fetch every selected source into the distfiles folder (for offline builds)"""
    return download_task(CTX)


def task_sources():
    """every source a target needs: fetched, verified, unpacked, patched (nothing built)"""
    yield from sources_tasks(CTX)


def task_binutils():
    """binutils for the target, installed into its prefix"""
    yield from stage_tasks(CTX, "binutils")


def task_gcc_core():
    """gcc's compiler proper (make all-gcc), gmp/mpfr/mpc built in-tree"""
    yield from stage_tasks(CTX, "gcc_core")


def task_libgcc_static():
    """musl's headers, then a static-only libgcc for building musl"""
    yield from stage_tasks(CTX, "libgcc_static")


def task_musl():
    """musl libc into the sysroot (crt objects, libc.a, libc.so)"""
    yield from stage_tasks(CTX, "musl")


def task_gcc():
    """the rest of gcc: libgcc (with libgcc_eh), libstdc++; static libgcc into the sysroot"""
    yield from stage_tasks(CTX, "gcc")


def task_hello():
    """C and C++ hello-worlds, -static and -static-pie: static ELF gates, run under qemu"""
    yield from stage_tasks(CTX, "hello")


def task_ncurses():
    """wide-character ncurses, static, with terminfo for common terminals, into the sysroot"""
    yield from stage_tasks(CTX, "ncurses")


def task_libedit():
    """libedit (readline API) against ncurses, static, into the sysroot; a test program runs"""
    yield from stage_tasks(CTX, "libedit")


def task_rust_std():
    """the target's Rust std: rustup's, or built offline once from Debian's Rust source"""
    yield from stage_tasks(CTX, "rust_std")


def task_rust():
    """Rust hello and unwinding test linked by our gcc against our musl (std from rustup or
    built offline from Debian's Rust source)"""
    yield from stage_tasks(CTX, "rust")


def task_rust_obj():
    """the seed-004 way: rustc --emit=obj, linked by gcc -nodefaultlibs ... -lgcc_eh -lc"""
    yield from stage_tasks(CTX, "rust_obj")


def task_package():
    """env file, manifest and tarball of the target's toolchain"""
    yield from stage_tasks(CTX, "package")


def task_toolchain():
    """build the musl cross toolchain of a target"""
    yield from toolchain_tasks(CTX)
