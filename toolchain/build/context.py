"""What every stage works with: one target's build (paths, tools, environments) and
the runner of its commands. Stage modules import this; it imports no stage."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import ccache, jobserver, machine
from ..sources.recipes import Host, Target, Version
from .runner import Status, run
from ..settings import Settings
from ..sources.store import tree_path

HOST_ENV = ("PATH", "HOME", "TMPDIR", "SOURCE_DATE_EPOCH", "TERM", "USER", "LOGNAME", "TZ")
HOST_FLAGS = "-g0 -O2"   # the toolchain's own programs: no debug info (much faster to build)
# Build paths never enter the output: the toolchain is configured for prefix "" (relocatable,
# installed with DESTDIR), configure scripts are called by relative paths, and compilers map
# the output folder to this fixed name in debug info and __FILE__.
MAPPED_OUT = "/musl-toolchain"
# The kinds of builds a stage takes part in (Build.kind): HERE, the toolchain's programs run
# on the build machine (for it, or static ones for its kind of machine: stage 0 compiles
# them), so the stages build and run target code with them; CANADIAN, they are for another
# machine (a canadian cross): only the programs are built, and the target's files come from
# the same target's toolchain for the build machine.
HERE = "here"
CANADIAN = "canadian"


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
    host: Host | None = None     # None: the toolchain's programs are the build machine's own kind

    @property
    def name(self) -> str:
        """`<target>`, or `<target>@<host>`: the subtask and folder names."""
        return f"{self.target.name}@{self.host.name}" if self.host else self.target.name

    @property
    def stage0(self) -> Build | None:
        """The toolchain (for the build machine) that compiles this one's programs, if not the
        build machine's gcc."""
        return Build(self.settings, self.host.stage0, self.versions) if self.host else None

    @property
    def kind(self) -> str:
        """HERE or CANADIAN (stage.py): whether the toolchain's programs run on this machine."""
        s0 = self.stage0
        return CANADIAN if s0 is not None and not machine.runs_natively(s0.target) else HERE

    @property
    def twin(self) -> Build:
        """The same target's toolchain for the build machine: a canadian build takes the
        target's files (sysroot, libgcc, libstdc++, Rust's std) from it, and runs its tools."""
        return Build(self.settings, self.target, self.versions)

    @property
    def needs(self) -> list[Build]:
        """The toolchains finished before this one's first stage."""
        return [self.stage0, *([self.twin] if self.kind == CANADIAN else [])] if self.stage0 else []

    @property
    def triple(self) -> str:
        return self.target.triple

    @property
    def prefix(self) -> Path:
        return self.settings.out / "toolchains" / self.name

    @property
    def sysroot(self) -> Path:
        return self.prefix / self.triple

    @property
    def work(self) -> Path:
        return self.settings.out / "build" / self.name

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

    def make(self, *targets: str) -> list[str]:
        """make with the jobs setting (which never changes what is built), or the run's
        jobserver's jobs."""
        return ["make", *jobserver.make_jobs(self.settings.jobs), *targets]

    def remove_libtool_archives(self, under: Path | None = None) -> None:
        """.la files: build paths inside, and nothing needs them for static links."""
        for la in (under or self.prefix).rglob("*.la"):
            la.unlink()

    def tool(self, name: str) -> str:
        return str(self.prefix / "bin" / f"{self.triple}-{name}")

    def env(self) -> dict[str, str]:
        # an allow-list: CPATH, LIBRARY_PATH, GCC_EXEC_PREFIX, CONFIG_SITE, MAKEFLAGS, ... from
        # the user's shell would otherwise reach the host compiler and the configure scripts
        env = {k: v for k, v in os.environ.items() if k in HOST_ENV}
        # no prefix map for the host programs: built with -g0 they hold no build path (the
        # package stage's leak gate checks), and gcc hashes its link flags into cc1's PCH
        # checksum, so a map naming the output folder would make cc1 differ between folders
        # the target's tools that run here: our own, or in a canadian build the twin's
        tools = (self.twin if self.kind == CANADIAN else self).prefix / "bin"
        env.update(PATH=f"{tools}:{env.get('PATH', '/usr/bin:/bin')}", LC_ALL="C",
                   CFLAGS=HOST_FLAGS, CXXFLAGS=HOST_FLAGS)
        return env

    def host_env(self) -> dict[str, str]:
        """The environment that builds the toolchain's own programs (binutils, gcc); stage 0's
        tools are found in PATH (host_compiler names them without their folder)."""
        env = {**self.env(), **self.host_compiler()}
        if self.stage0 is not None:
            env["PATH"] = f"{self.stage0.prefix / 'bin'}:{env['PATH']}"
        if self.settings.ccache:
            env.update(ccache.environment(self.settings, env["PATH"]))
        return env

    def host_configure(self) -> list[str]:
        """configure's --build and --host when stage 0 compiles the programs: the build triple
        twice for this kind of machine, stage 0's triple as host in a canadian cross; else
        nothing (configure guesses)."""
        if self.stage0 is None:
            return []
        if self.kind == CANADIAN:   # prefixed names even where host = target (aarch64 on aarch64)
            return [f"--build={machine.build_triple()}", f"--host={self.stage0.triple}",
                    f"--program-prefix={self.triple}-"]
        return [f"--build={machine.build_triple()}", f"--host={machine.build_triple()}"]

    def host_compiler(self) -> dict[str, str]:
        """The compiler of the toolchain's own programs: the build machine's (configure finds
        gcc), or stage 0's, linking static. libtool drops a lone -static when linking
        programs, not a --static, hence both; its binutils make the host archives too, and
        the programs are stripped (-s) as musl.cc's are."""
        s0 = self.stage0
        if s0 is None:
            return {}
        # the programs that run while building (gcc's generators, build-fixincludes) need the
        # build machine's compiler when the toolchain's own programs do not run here
        for_build = dict(CC_FOR_BUILD="gcc", CXX_FOR_BUILD="g++") if self.kind == CANADIAN else {}
        # by name, not path: gcc hashes its link command (CC and all) into cc1's PCH checksum,
        # so a path would make cc1 differ between two out folders (16 bytes, measured)
        tool = lambda name: f"{s0.triple}-{name}"
        return dict(CC=f"{tool('gcc')} -static --static", CXX=f"{tool('g++')} -static --static",
                    AR=tool("ar"), RANLIB=tool("ranlib"), LDFLAGS="-s", **for_build)

    def steps(self, stage: str, status: Status, env: dict[str, str] | None = None) -> Steps:
        """The runner of a stage's commands, with the host environment unless told otherwise."""
        return Steps(self.log(stage), self.env() if env is None else env, status)

    def target_vars(self) -> dict[str, str]:
        """What building target programs with our cross compiler sets in the environment:
        the target tools and flags, and pkg-config confined to the sysroot."""
        return dict(CC=self.tool("gcc"), CXX=self.tool("g++"), AR=self.tool("ar"), RANLIB=self.tool("ranlib"),
                    STRIP=self.tool("strip"), CFLAGS=self.target_cflags, CXXFLAGS=self.target_cflags,
                    BUILD_CC="gcc", PKG_CONFIG_SYSROOT_DIR=str(self.sysroot),
                    PKG_CONFIG_LIBDIR=str(self.sysroot / "lib" / "pkgconfig"))

    def target_env(self) -> dict[str, str]:
        """The one environment for building target code (musl, ncurses, libedit): the host
        environment plus `target_vars`."""
        return {**self.env(), **self.target_vars()}
