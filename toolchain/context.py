"""What every stage works with: one target's build (paths, tools, flags, environments) and
the runner of its commands. Stage modules import this; it imports no stage."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import machine
from .recipes import Target, Version
from .runner import Status, run
from .settings import Settings
from .sources import tree_path

HOST_ENV = ("PATH", "HOME", "TMPDIR", "SOURCE_DATE_EPOCH", "TERM", "USER", "LOGNAME", "TZ")
HOST_FLAGS = "-g0 -O2"   # the toolchain's own programs: no debug info (much faster to build)
# Build paths never enter the output: the toolchain is configured for prefix "" (relocatable,
# installed with DESTDIR), configure scripts are called by relative paths, and compilers map
# the output folder to this fixed name in debug info and __FILE__.
MAPPED_OUT = "/musl-toolchain"


@dataclass
class Steps:
    """A stage's commands: its log, environment and status line given once, so that a stage
    reads like a recipe (`sh.run(["make", "install"], cwd=obj, step="install")`)."""

    log: Path
    env: dict[str, str]
    status: Status

    def run(self, cmd: list[str], *, cwd: Path, step: str = "", env: dict[str, str] | None = None,
            capture: bool = False) -> str:
        return run(cmd, log=self.log, cwd=cwd, env=self.env if env is None else env, status=self.status,
                   step=step, capture=capture)


@dataclass
class Build:
    settings: Settings
    target: Target
    versions: dict[str, Version]

    @property
    def triple(self) -> str:
        return self.target.triple

    @property
    def prefix(self) -> Path:
        return self.settings.out / "toolchains" / self.target.name

    @property
    def sysroot(self) -> Path:
        return self.prefix / self.triple

    @property
    def work(self) -> Path:
        return self.settings.out / "build" / self.target.name

    def src(self, package: str) -> Path:
        return tree_path(self.settings, self.versions[package])

    def stamp(self, stage: str) -> Path:
        return self.work / "stamps" / f"{stage}.json"

    def log(self, stage: str) -> Path:
        return self.work / "logs" / f"{stage}.log"

    @property
    def runner(self) -> list[str]:
        """How to run a target program here: nothing on its own kind of machine, else qemu-user."""
        return machine.runner(self.target)

    def link_usr(self) -> None:
        """sysroot/usr -> . so that --prefix=/usr installs land where gcc looks (/include, /lib)."""
        usr = self.sysroot / "usr"
        if not usr.is_symlink():
            usr.symlink_to(".")

    @property
    def prefix_map(self) -> str:
        return f"-ffile-prefix-map={self.settings.out}={MAPPED_OUT}"

    @property
    def target_cflags(self) -> str:
        """CFLAGS for the target libraries we build with our gcc (musl, ncurses, libedit)."""
        return f"-O2 {self.prefix_map}"

    def configure(self, src: Path, cwd: Path) -> str:
        """A source's configure script by a relative path: the same text in every build folder
        (gcc records its configure command line in the driver)."""
        return os.path.relpath(src / "configure", cwd)

    def tool(self, name: str) -> str:
        return str(self.prefix / "bin" / f"{self.triple}-{name}")

    def env(self) -> dict[str, str]:
        # an allow-list: CPATH, LIBRARY_PATH, GCC_EXEC_PREFIX, CONFIG_SITE, MAKEFLAGS, ... from
        # the user's shell would otherwise reach the host compiler and the configure scripts
        env = {k: v for k, v in os.environ.items() if k in HOST_ENV}
        # no prefix map for the host programs: built with -g0 they hold no build path (the
        # package stage's leak gate checks), and gcc hashes its link flags into cc1's PCH
        # checksum, so a map naming the output folder would make cc1 differ between folders
        env.update(PATH=f"{self.prefix / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", LC_ALL="C",
                   CFLAGS=HOST_FLAGS, CXXFLAGS=HOST_FLAGS)
        return env

    # -- configure flags (also recorded in the report) ------------------------------------

    def binutils_flags(self) -> list[str]:
        return [f"--target={self.triple}", "--prefix=", f"--with-sysroot=/{self.triple}",
                "--disable-nls", "--disable-werror", "--disable-multilib", "--disable-gprofng",
                "--disable-gdb", "--disable-gdbserver", "--disable-sim", "--disable-readline",
                "--enable-deterministic-archives"]

    def gcc_flags(self) -> list[str]:
        langs = ",".join(self.settings.languages)
        return [f"--target={self.triple}", "--prefix=", f"--with-sysroot=/{self.triple}",
                "--with-native-system-header-dir=/include", f"--enable-languages={langs}",
                "--disable-nls", "--disable-multilib", "--disable-bootstrap", "--disable-werror",
                "--disable-libsanitizer", "--enable-tls", "--enable-initfini-array",
                # PIE by default (as Alpine): `gcc -static-pie x.c` just works, and the static
                # libraries built with it can go into static-pie programs (Rust's default)
                "--enable-default-pie",
                "--enable-libstdcxx-time=rt", "--disable-gnu-indirect-function",
                "--with-pkgversion=musl-toolchain", *self.target.gcc_configure]

    def gcc_make_vars(self) -> list[str]:
        """Make variables (not configure options, which gcc records in the driver) for the real
        sysroot while building: its headers for fixincludes, and --sysroot for the target
        libraries, whose debug info gets the output folder mapped."""
        # gcc's top Makefile passes no command-line variables down (MAKEOVERRIDES=), but
        # TARGET-gcc is the goal list of its sub-make in gcc/, which takes assignments too
        return [f"TARGET-gcc=all BUILD_SYSTEM_HEADER_DIR={self.sysroot / 'include'}",
                f"SYSROOT_CFLAGS_FOR_TARGET=--sysroot={self.sysroot}",
                f"DEBUG_PREFIX_CFLAGS_FOR_TARGET={self.prefix_map}"]

    def musl_flags(self) -> list[str]:
        return ["--prefix=", f"--target={self.triple}", "--syslibdir=/lib"]

    def steps(self, stage: str, status: Status, env: dict[str, str] | None = None) -> Steps:
        """The runner of a stage's commands, with the host environment unless told otherwise."""
        return Steps(self.log(stage), self.env() if env is None else env, status)

    def target_env(self) -> dict[str, str]:
        """The environment for building target libraries with our cross compiler (ncurses,
        libedit): the host environment plus the target tools and flags."""
        env = self.env()
        env.update(CC=self.tool("gcc"), CXX=self.tool("g++"), AR=self.tool("ar"), RANLIB=self.tool("ranlib"),
                   STRIP=self.tool("strip"), CFLAGS=self.target_cflags, CXXFLAGS=self.target_cflags,
                   BUILD_CC="gcc", PKG_CONFIG_SYSROOT_DIR=str(self.sysroot),
                   PKG_CONFIG_LIBDIR=str(self.sysroot / "lib" / "pkgconfig"))
        return env
