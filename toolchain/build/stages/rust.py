"""Rust programs linked by our gcc against our musl, never rustc's bundled one.

The target's std comes from rustup when that target is installed; otherwise it is built once
from the Rust source Debian ships (rust-web-src, with std's crates vendored) with
`cargo -Zbuild-std`, offline, and kept as a sysroot for `rustc --sysroot`. Linking always
goes through <triple>-gcc with `-C link-self-contained=no` and crt-static; std's `-lunwind`
is served by gcc's static unwinder libgcc_eh.a (copied as libunwind.a into a folder of its
own). The gates prove the result is static, runs, unwinds, and was linked with the sysroot's
libc.a (from the linker map).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from ...checks import gates
from ..context import Build, Steps
from ..runner import Status, clean_dir
from ..stage import Stage
from .envfile import LOCATE, LOCATE_END
from ...say import say

BUILD_STD = "std,panic_unwind"   # the crates -Zbuild-std builds when rustup has no std for the target
HELLO = 'fn main() {\n    println!("hello, world!");\n}\n'
UNWIND = r'''use std::panic;
struct Noisy(&'static str);
impl Drop for Noisy {
    fn drop(&mut self) { println!("dropped {}", self.0); }
}
fn main() {
    panic::set_hook(Box::new(|_| {}));
    let caught = panic::catch_unwind(|| { let _n = Noisy("in main"); panic!("boom"); });
    println!("caught: {}", caught.is_err());
    let worker = std::thread::spawn(|| { let _n = Noisy("in thread"); panic!("thread boom"); });
    println!("thread panicked: {}", worker.join().is_err());
    let bt = std::backtrace::Backtrace::force_capture().to_string();
    println!("backtrace names main: {}", bt.contains("unwind::main"));
}
'''
UNWIND_OUTPUT = ("dropped in main\ncaught: true\ndropped in thread\nthread panicked: true\n"
                 "backtrace names main: true\n")
CARGO_TOML = """[package]
name = "hello"
version = "0.1.0"
edition = "2021"

[[bin]]
name = "hello"
path = "hello.rs"

[[bin]]
name = "unwind"
path = "unwind.rs"

[profile.release]
panic = "unwind"
debug = false
strip = false
"""


@dataclass(frozen=True)
class Rust:
    rustc: str
    cargo: str
    version: str
    mode: str            # "rustup" (target std installed) or "build-std" (from vendored source)
    sysroot: str         # rustc's own sysroot


def _probe(rustc: str) -> tuple[str, str] | None:
    try:
        env = {**os.environ, "PATH": f"{Path(rustc).parent}:/usr/bin:/bin"}
        version = subprocess.run([rustc, "--version"], capture_output=True, text=True, timeout=60, env=env)
        sysroot = subprocess.run([rustc, "--print", "sysroot"], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if version.returncode or sysroot.returncode:
        return None
    return version.stdout.strip(), sysroot.stdout.strip()


def find(rust_target: str) -> Rust | None:
    """The Rust toolchain to use for a target, preferring an installed target std."""
    candidates = [p for p in (shutil.which("rustc"), "/usr/bin/rustc") if p and Path(p).exists()]
    found = []
    for rustc in dict.fromkeys(candidates):
        probed = _probe(rustc)
        if not probed:
            continue
        version, sysroot = probed
        cargo = str(Path(rustc).with_name("cargo"))
        if list((Path(sysroot) / "lib" / "rustlib" / rust_target / "lib").glob("libstd-*.rlib")):
            return Rust(rustc, cargo, version, "rustup", sysroot)
        if (Path(sysroot) / "lib" / "rustlib" / "src" / "rust" / "library" / "vendor").is_dir() \
                and Path(cargo).exists():
            found.append(Rust(rustc, cargo, version, "build-std", sysroot))
    return found[0] if found else None


def describe(rust: Rust | None) -> dict:
    return asdict(rust) if rust else {"none": True}


class RustBuild:
    """Paths and commands for one target's Rust work."""

    def __init__(self, b, rust: Rust):
        self.b, self.rust = b, rust
        self.work = b.work / "rust"
        self.std_sysroot = b.prefix / "lib" / "rust" / "sysroot"         # build-std mode only

    @property
    def rt(self) -> str:
        return self.b.target.rust_target

    @property
    def unwind_dir(self) -> Path:
        return self.b.prefix / "lib" / "rust" / self.rt                  # libunwind.a lives here

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO_", "RUST"))}
        env["PATH"] = f"{Path(self.rust.rustc).parent}:{self.b.prefix / 'bin'}:/usr/bin:/bin"
        env["CARGO_HOME"] = str(self.work / "cargo-home")
        env["CARGO_NET_OFFLINE"] = "true"
        if self.b.target.elf_class == 32:
            env["RUST_LIBC_UNSTABLE_MUSL_V1_2_3"] = "1"   # 64-bit time_t on 32-bit musl
        return env

    def rustflags(self, prefix: str) -> list[str]:
        """rustc flags for a toolchain at `prefix` (a path, or a shell variable in templates)."""
        flags = ["-C", "target-feature=+crt-static", "-C", "link-self-contained=no",
                 "-L", f"native={prefix}/lib/rust/{self.rt}"]
        if self.rust.mode == "build-std":
            flags += ["--sysroot", f"{prefix}/lib/rust/sysroot"]
        return flags

    def cargo_config(self, prefix: str) -> str:
        flags = ", ".join(json.dumps(f) for f in self.rustflags(prefix))
        text = (f"# cargo build --target {self.rt} with the {self.b.triple} toolchain\n"
                f"[target.{self.rt}]\nlinker = \"{prefix}/bin/{self.b.triple}-gcc\"\nrustflags = [{flags}]\n")
        if self.rust.mode == "build-std":
            text += (f"\n[build]\n# the std in --sysroot was built by this rustc ({self.rust.version})\n"
                     f"rustc = \"{self.rust.rustc}\"\n")
        if self.b.target.elf_class == 32:
            text += "\n[env]\nRUST_LIBC_UNSTABLE_MUSL_V1_2_3 = \"1\"   # 64-bit time_t (year 2038 safe)\n"
        return text

    def cargo_config_script(self) -> str:
        """bin/<triple>-cargo-config: prints the cargo config for wherever the toolchain now is."""
        return ("#!/bin/sh\n"
                f"# {self.b.triple}-cargo-config >> .cargo/config.toml   (or ~/.cargo/config.toml)\n"
                'prefix="$(cd "$(dirname "$0")/.." && pwd -P)"\n'
                f"cat <<EOF\n{self.cargo_config('$prefix')}EOF\n")

    def env_file(self) -> str:
        """The same as environment variables, for `. lib/rust/env-<rust target>.sh`."""
        var = "CARGO_TARGET_" + self.rt.upper().replace("-", "_")
        text = (f"# . this file, then: cargo build --target {self.rt}\n"
                + LOCATE.format(triple=self.b.triple, up="../..") +
                f"export {var}_LINKER=\"$_tc_prefix/bin/{self.b.triple}-gcc\"\n"
                f"export {var}_RUSTFLAGS=\"{' '.join(self.rustflags('$_tc_prefix'))}\"\n")
        if self.rust.mode == "build-std":
            text += f"export RUSTC=\"{self.rust.rustc}\"   # the std here was built for {self.rust.version}\n"
        if self.b.target.elf_class == 32:
            text += "export RUST_LIBC_UNSTABLE_MUSL_V1_2_3=1   # 64-bit time_t\n"
        return text + LOCATE_END


def probe(b) -> dict:
    """What the Rust stages depend on outside our files: which rustc, which std (for doit)."""
    return describe(find(b.target.rust_target) if b.target.rust_target else None)


def build_std(rb: RustBuild, st: Status, log: Path) -> None:
    """std for the target from the vendored Rust source, offline, into a rustc sysroot."""
    src = Path(rb.rust.sysroot) / "lib" / "rustlib" / "src" / "rust" / "library"
    proj = clean_dir(rb.work / "std-build")
    (proj / "src").mkdir()
    (proj / "Cargo.toml").write_text('[package]\nname = "stdbuild"\nversion = "0.0.0"\nedition = "2021"\n'
                                     '[lib]\npath = "src/lib.rs"\n')
    (proj / "src" / "lib.rs").write_text("")
    (proj / ".cargo").mkdir()
    (proj / ".cargo" / "config.toml").write_text(
        f'[source.crates-io]\nreplace-with = "rust-std-vendor"\n'
        f'[source.rust-std-vendor]\ndirectory = "{src / "vendor"}"\n')
    env = rb.env()
    env["RUSTC_BOOTSTRAP"] = "1"   # -Zbuild-std on a stable rustc
    env["RUSTC"] = rb.rust.rustc
    Steps(log, env, st).run([rb.rust.cargo, "build", "--release", "--offline", "--target", rb.rt,
                             f"-Zbuild-std={BUILD_STD}"], cwd=proj, step="build std (offline)")
    lib = rb.std_sysroot / "lib" / "rustlib" / rb.rt / "lib"
    shutil.rmtree(lib, ignore_errors=True)
    lib.mkdir(parents=True)
    for rlib in (proj / "target" / rb.rt / "release" / "deps").glob("*.rlib"):
        if not rlib.name.startswith("libstdbuild-"):
            shutil.copy2(rlib, lib / rlib.name)
    if not list(lib.glob("libstd-*.rlib")):
        raise gates.GateError("no libstd rlib was built", where=str(lib))
    shutil.rmtree(proj / "target", ignore_errors=True)


def provide_unwind(rb: RustBuild) -> None:
    """std asks for -lunwind: gcc's static unwinder libgcc_eh.a is it."""
    rb.unwind_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(rb.b.sysroot / "lib" / "libgcc_eh.a", rb.unwind_dir / "libunwind.a")
    gates.target_archive(rb.unwind_dir / "libunwind.a", rb.b.target)


def check_link_args(printed: str, rb: RustBuild) -> None:
    """rustc's link line: our gcc, and -Wl,-Bstatic in force for -lunwind and -lc."""
    line = next((l for l in printed.splitlines() if rb.b.tool("gcc") in l), "")
    if not line:
        raise gates.GateError(f"rustc did not link with {rb.b.tool('gcc')}", where="rustc --print link-args")
    args = shlex.split(line)
    mode = "dynamic"
    for arg in args:
        if arg in ("-Wl,-Bstatic", "-Bstatic"):
            mode = "static"
        elif arg in ("-Wl,-Bdynamic", "-Bdynamic"):
            mode = "dynamic"
        elif arg in ("-lc", "-lunwind") and mode != "static":
            raise gates.GateError(f"{arg} is linked while -Bdynamic is in force", where="rustc --print link-args",
                                  fix="a trailing -l after rustc's -Wl,-Bdynamic picks a shared library")
        if "self-contained" in arg:
            raise gates.GateError(f"rustc's bundled object {arg} is on the link line", where="link args")


def check_link_map(mapfile: Path, rb: RustBuild, unwind: str = "libunwind.a(") -> None:
    """The linker map must show our sysroot's libc.a and our libunwind.a, and no other libc."""
    text = mapfile.read_text(errors="replace")
    ours = str(rb.b.sysroot / "lib" / "libc.a")
    libcs = {os.path.realpath(p) for p in re.findall(r"(\S*/libc\.a)\(", text)}
    if os.path.realpath(ours) not in libcs:
        raise gates.GateError(f"the linker map shows no member of {ours}", where=str(mapfile),
                              fix="rustc linked another libc: check -C link-self-contained=no")
    if len(libcs) > 1:
        raise gates.GateError(f"members of several libc.a were linked: {', '.join(sorted(libcs))}",
                              where=str(mapfile))
    if "self-contained" in text:
        raise gates.GateError("rustc's self-contained (bundled musl) objects were linked", where=str(mapfile))
    if unwind not in text:
        raise gates.GateError(f"no {unwind[:-1]} member was linked", where=str(mapfile))


def _no_rust(b) -> None:
    if not b.target.rust_target:
        say(f"[{b.name}] Rust has no std for {b.triple} (no rust_target in recipes/targets.yaml): "
            "the toolchain is built and packaged without the Rust stages")
        return
    say(f"[{b.name}] no Rust toolchain with a {b.target.rust_target} std or the "
        "vendored Rust source to build one; the Rust stages are skipped (rustup target add "
        f"{b.target.rust_target}, or Debian's rustc-web cargo-web rust-web-src)")


def _rust_build(b, stage: str) -> RustBuild | None:
    """The Rust to use for this target (logged), or None; the first Rust stage says why."""
    rust = find(b.target.rust_target) if b.target.rust_target else None
    if rust is None:
        if stage == "rust_std":
            _no_rust(b)
        return None
    with open(b.log(stage), "a") as f:
        f.write(f"rust: {rust}\n")
    return RustBuild(b, rust)


def stage_rust_std(b, st: Status) -> None:
    """The target's std: nothing to do with rustup's; else built offline into a sysroot."""
    rb = _rust_build(b, "rust_std")
    if rb is None:
        return
    rust = rb.rust
    provide_unwind(rb)
    if rust.mode == "build-std":
        build_std(rb, st, b.log("rust_std"))
    else:
        say(f"[{b.name}] rust_std: using the installed std of {rust.rustc} ({rust.version})")


def stage_rust(b, st: Status) -> None:
    rb = _rust_build(b, "rust")
    if rb is None:
        return
    rust = rb.rust
    proj = clean_dir(rb.work / "hello")
    (proj / "Cargo.toml").write_text(CARGO_TOML)
    (proj / "hello.rs").write_text(HELLO)
    (proj / "unwind.rs").write_text(UNWIND)
    script = b.prefix / "bin" / f"{b.triple}-cargo-config"
    script.write_text(rb.cargo_config_script())
    script.chmod(0o755)
    (b.prefix / "lib" / "rust" / f"env-{rb.rt}.sh").write_text(rb.env_file())
    (proj / ".cargo").mkdir()
    config = subprocess.run([str(script)], capture_output=True, text=True, check=True).stdout
    if config != rb.cargo_config(str(Path(os.path.realpath(b.prefix)))):
        raise gates.GateError(f"prints a config for another place:\n{config}", where=str(script))
    (proj / ".cargo" / "config.toml").write_text(config)
    mapfile = proj / "hello.map"
    sh = b.steps("rust", st, {**rb.env(), "RUSTC": rust.rustc})
    link = sh.run([rust.cargo, "rustc", "--release", "--offline", "--target", rb.rt, "--bin", "hello", "--",
                   "--print", "link-args", "-C", f"link-arg=-Wl,-Map={mapfile}"], cwd=proj,
                  step="cargo build hello", capture=True)
    check_link_args(link, rb)
    exe = proj / "target" / rb.rt / "release" / "hello"
    gates.static_executable(exe, b.target)
    check_link_map(mapfile, rb)
    gates.runs([*b.runner, str(exe)], "hello, world!\n", where=str(exe))
    # the unwinding test: panics caught, a destructor during a thread's unwind, a backtrace
    sh.run([rust.cargo, "build", "--release", "--offline", "--target", rb.rt, "--bin", "unwind"], cwd=proj,
           step="cargo build unwind")
    exe = proj / "target" / rb.rt / "release" / "unwind"
    gates.static_executable(exe, b.target)
    gates.runs([*b.runner, str(exe)], UNWIND_OUTPUT, where=str(exe))


def stage_rust_obj(b, st: Status) -> None:
    """The seed-004 way: `rustc --emit=obj`, then a link we drive with gcc -nodefaultlibs."""
    rb = _rust_build(b, "rust_obj")
    if rb is None:
        return
    rust = rb.rust
    sysroot = rb.std_sysroot if rust.mode == "build-std" else Path(rust.sysroot)
    work = clean_dir(rb.work / "obj")
    (work / "hello.rs").write_text(HELLO)
    sh = b.steps("rust_obj", st, rb.env())
    base = [rust.rustc, "--target", rb.rt, "--sysroot", str(sysroot), "-O", "-C", "panic=unwind",
            "-C", "target-feature=+crt-static"]
    sh.run([*base, "--emit=obj", "hello.rs", "-o", "hello.o"], cwd=work, step="rustc --emit=obj")
    # Current Rust puts the allocator shim (__rust_alloc & co.) in an object of its own that
    # only a rustc-driven link creates; keep it with -C save-temps and a linker that does nothing.
    temps = clean_dir(work / "temps")
    sh.run([*base, "-C", "save-temps", "-C", "linker=true", "../hello.rs", "-o", "hello"], cwd=temps,
           step="allocator shim")
    shim = [p for p in temps.glob("*.o") if _defines(p, "__rust_alloc")]
    if len(shim) != 1:
        raise gates.GateError(f"found {len(shim)} objects defining __rust_alloc, expected 1", where=str(temps))
    rlibs = sorted(str(p) for p in (sysroot / "lib" / "rustlib" / rb.rt / "lib").glob("*.rlib"))
    exe = work / "hello-obj"
    sh.run([b.tool("gcc"), "-static", "-nodefaultlibs", "-o", exe.name, "hello.o", str(shim[0]),
            "-Wl,--start-group", *rlibs, "-Wl,--end-group", "-Wl,-Bstatic", "-lgcc_eh", "-lc", "-lgcc",
            f"-Wl,-Map={work / 'hello-obj.map'}"], cwd=work, step="gcc link")
    gates.static_executable(exe, b.target, kind="static")
    check_link_map(work / "hello-obj.map", rb, unwind="libgcc_eh.a(")
    gates.runs([*b.runner, str(exe)], "hello, world!\n", where=str(exe))


def _defines(obj: Path, suffix: str) -> bool:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection
    with open(obj, "rb") as f:
        for sec in ELFFile(f).iter_sections():
            if isinstance(sec, SymbolTableSection):
                for sym in sec.iter_symbols():
                    if sym.name.endswith(suffix) and sym["st_shndx"] != "SHN_UNDEF":
                        return True
    return False






def config(b: Build) -> dict:
    return {"rust": [b.target.rust_target, HELLO, UNWIND, UNWIND_OUTPUT, CARGO_TOML]}


STAGES = (
    Stage("rust_std", "the target's Rust std: rustup's, or built offline once from Debian's Rust source",
          stage_rust_std, after=("gcc",), config=lambda b: {"rust_std": [b.target.rust_target, BUILD_STD]},
          probe=probe, makes="`lib/rust/` in the prefix", quick_repro=True),
    Stage("rust", "Rust hello and unwinding test linked by our gcc against our musl (std from rustup or "
          "built offline from Debian's Rust source)", stage_rust, after=("rust_std",), config=config, probe=probe,
          makes="cargo config and env file; a message, not a failure, without Rust"),
    Stage("rust_obj", "the seed-004 way: rustc --emit=obj, linked by gcc -nodefaultlibs ... -lgcc_eh -lc",
          stage_rust_obj, after=("rust",), config=config, probe=probe),
)
