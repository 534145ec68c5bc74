"""The deliverable of a target: an env file in the prefix, a manifest (versions, the sha256 of
every input, configure flags), and a tarball of the prefix with sorted entries, fixed owner
and mtime, and no compression timestamp."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ...checks.gates import GateError, static_host_programs
from ...sources.download import sha256_file
from ...sources.store import fetch_stamp, patch_hashes, write_json
from ..context import Build
from ..report import write_report
from ..runner import Status
from ..stage import CANADIAN, HERE, Stage
from .envfile import LOCATE, LOCATE_END
from ...say import say

MANIFEST = "musl-toolchain.json"
SUMS = "musl-toolchain.sha256"     # `sha256sum -c` format: every regular file of the toolchain
ENV_FILE = "env.sh"

ENV_TEMPLATE = ("""\
# Use the {triple} toolchain in this shell:   . path/to/toolchain/env.sh
""" + LOCATE + """\
export PATH="$_tc_prefix/bin:$PATH"
export CROSS_COMPILE={triple}-
export CC={triple}-gcc CXX={triple}-g++ AR={triple}-ar RANLIB={triple}-ranlib STRIP={triple}-strip
export MUSL_TOOLCHAIN_SYSROOT="$_tc_prefix/{triple}"
export PKG_CONFIG_SYSROOT_DIR="$MUSL_TOOLCHAIN_SYSROOT"
export PKG_CONFIG_LIBDIR="$MUSL_TOOLCHAIN_SYSROOT/lib/pkgconfig"
""" + LOCATE_END)


def source_date_epoch() -> int:
    try:
        return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        return 0


def manifest(b: Build, report: dict) -> dict:
    """Versions, every input's sha256 (sources, patches), and each stage's configure flags
    (from the build report)."""
    inputs = {}
    for pkg, version in b.versions.items():
        try:
            record = json.loads(fetch_stamp(b.settings, version).read_text())
        except (OSError, ValueError):
            continue
        inputs[version.key] = {
            "source": {"file": Path(record["source"]["path"]).name, "sha256": record["source"]["sha256"]},
            "patches": patch_hashes(version, record),
        }
    # a toolchain for the build machine keeps the manifest it always had (the same tarball)
    host = {"host": {"name": b.host.name, "compiled_by": f"{b.stage0.triple}-gcc (stage 0), static",
                     **({"target_files_from": f"toolchain:{b.twin.name}"} if b.kind == CANADIAN else {})}} \
        if b.host else {}
    return {"target": b.target.name, "triple": b.triple, **host,
            "versions": {p: v.version for p, v in b.versions.items()},
            "inputs": inputs,
            "configure": {n: s["config"].get("configure", []) for n, s in sorted(report["stages"].items())}}


def _walk(root: Path) -> list[Path]:
    """Everything under root, sorted by relative path; symlinks are not followed."""
    paths = []
    for top, dirs, files in os.walk(root):
        paths += [Path(top) / n for n in dirs + files]
    return sorted(paths, key=lambda p: str(p.relative_to(root)))


def file_sums(prefix: Path) -> str:
    return "".join(f"{sha256_file(p)}  {p.relative_to(prefix)}\n" for p in _walk(prefix)
                   if p.is_file() and not p.is_symlink() and p.name != SUMS)


def leaked_paths(prefix: Path, needles: list[str]) -> list[str]:
    """Files (and symlinks) under prefix that mention one of the build machine's folders."""
    raw = [n.encode() for n in needles]
    found = []
    for p in _walk(prefix):
        if p.is_symlink():
            hit = any(n in os.readlink(p) for n in needles)
        elif p.is_file():
            data = p.read_bytes()
            hit = any(n in data for n in raw)
        else:
            continue
        if hit:
            found.append(str(p.relative_to(prefix)))
    return found


def absolute_symlinks(prefix: Path) -> list[str]:
    """Symlinks under prefix with an absolute target: outside the toolchain wherever it is."""
    return [str(p.relative_to(prefix)) for p in _walk(prefix) if p.is_symlink() and os.path.isabs(os.readlink(p))]


def tarball(src: Path, dest: Path, arcname: str, mtime: int) -> int:
    """A reproducible .tar.gz of `src` as `arcname/`; returns the number of entries."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    count = 0

    def norm(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = min(info.mtime, mtime) if mtime else 0
        return info

    try:
        with os.fdopen(fd, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="",
                                                           compresslevel=6) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in [src, *_walk(src)]:  # links are not followed (sysroot/usr -> .)
                rel = path.relative_to(src)
                name = arcname if str(rel) == "." else f"{arcname}/{rel}"
                tar.add(path, arcname=name, recursive=False, filter=norm)
                count += 1
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return count


def _is_troff(page: Path) -> bool:
    with open(page, "rb") as f:
        return f.read(1) in (b".", b"'")


def shipped_man_pages(prefix: Path, triple: str, source: Path) -> list[str]:
    """binutils regenerates its man pages while building, with the build machine's perl
    (pod2man), and leaves them empty where perl's Pod::Man is missing: install the pages its
    verified source ships instead. Pages that are not troff at all are removed, not shipped
    (Debian's gcc source has its GFDL manuals emptied, and gcc installs those as is)."""
    shipped = {}
    for page in sorted(source.rglob("*.[1-8]")):
        if page.is_file() and _is_troff(page):
            shipped.setdefault(page.name, page)
    changed = []
    for page in sorted(prefix.glob("share/man/man[1-8]/*")):
        if not page.is_file() or page.is_symlink():
            continue
        upstream = shipped.get(page.name.removeprefix(f"{triple}-"))
        if upstream is not None:
            text = upstream.read_bytes()
            if text != page.read_bytes():
                page.write_bytes(text)
                changed.append(f"{page.relative_to(prefix)}: as shipped")
        elif not _is_troff(page):
            page.unlink()
            changed.append(f"{page.relative_to(prefix)}: removed (not a man page)")
    return changed


def provenance_files(tarball: Path) -> tuple[Path, Path]:
    """Beside a tarball in out/dist once it was pushed to or restored from a cache: its
    artifact.json and signatures (toolchain.cache.artifact)."""
    return tarball.with_name(tarball.name + ".artifact.json"), tarball.with_name(tarball.name + ".artifact.json.sig")


def tarball_name(b: Build) -> str:
    """<triple>-gcc<version>-musl<version>, and -<host> for a toolchain for another host."""
    name = f"{b.triple}-gcc{b.versions['gcc'].version}-musl{b.versions['musl'].version}"
    return f"{name}-{b.host.name}" if b.host else name


def host_programs_gate(b: Build) -> None:
    if b.stage0:       # a toolchain for another host: its programs must run without a libc there
        checked = static_host_programs(b.prefix, b.stage0.target.elf_machine, b.stage0.target.elf_class,
                                       skip=b.sysroot)
        say(f"[{b.name}] {checked} host programs, all static")


def symlinks_gate(b: Build) -> None:
    outside = absolute_symlinks(b.prefix)
    if outside:
        raise GateError(f"{len(outside)} symlinks point outside the toolchain (absolute): " + ", ".join(outside[:20]),
                        where=str(b.prefix), fix="make them relative in the stage that installs them")


def env_file_gate(b: Build) -> None:
    check = subprocess.run(["bash", "-c", f'. "{b.prefix / ENV_FILE}" && command -v "$CC"'],
                           capture_output=True, text=True)
    if os.path.realpath(check.stdout.strip()) != os.path.realpath(b.tool("gcc")):
        raise GateError(f"sourcing it gives CC at {check.stdout.strip()!r}, expected {b.tool('gcc')}",
                        where=str(b.prefix / ENV_FILE))


def check_restored(b: Build) -> None:
    """The package stage of a toolchain restored from the cache (whose files were checked
    against its sha256 list): the gates that need no build."""
    host_programs_gate(b)
    symlinks_gate(b)
    env_file_gate(b)


def package(b: Build, report: dict) -> Path:
    host_programs_gate(b)
    for change in shipped_man_pages(b.prefix, b.triple, b.src("binutils")):
        say(f"[{b.name}] {change}")
    (b.prefix / ENV_FILE).write_text(ENV_TEMPLATE.format(triple=b.triple, up="."))
    data = manifest(b, report)
    write_json(b.prefix / MANIFEST, {**data, "files": f"{SUMS} (sha256 of every other file; sha256sum -c)"})
    symlinks_gate(b)
    needles = [str(b.work), str(b.settings.out / "src"), str(b.prefix), *(str(n.prefix) for n in b.needs)]
    leaks = leaked_paths(b.prefix, needles)
    if leaks:
        raise GateError(f"{len(leaks)} files name a build folder ({', '.join(needles)}): "
                        + ", ".join(leaks[:20]), where=str(b.prefix),
                        fix="map or drop the path in the stage that installs these files")
    (b.prefix / SUMS).write_text(file_sums(b.prefix))
    name = tarball_name(b)
    dest = b.settings.out / "dist" / f"{name}.tar.gz"
    for old in provenance_files(dest):      # a cache's record of an earlier tarball, not of this one
        old.unlink(missing_ok=True)
    entries = tarball(b.prefix, dest, name, source_date_epoch())
    write_json(dest.with_name(dest.name + ".manifest.json"), {**data, "tarball_sha256": sha256_file(dest),
                                                             "entries": entries})
    return dest


def run(b: Build, st: Status) -> None:
    """env file, manifest and the reproducible tarball of the prefix."""
    st.step = "tarball"
    dest = package(b, write_report(b))
    env_file_gate(b)
    with tarfile.open(dest) as tar:
        names = tar.getnames()
    if f"{names[0]}/bin/{b.triple}-gcc" not in names:
        raise GateError(f"has no bin/{b.triple}-gcc", where=str(dest))
    say(f"[{b.name}] tarball {dest} ({dest.stat().st_size >> 20} MiB, {len(names)} entries)")


STAGES = (
    Stage("package", "env file, manifest and tarball of the target's toolchain", run,
          reads=("binutils",), after=("gcc", "hello", "linux_headers_gate", "libedit", "rust_obj"),
          config=lambda b: {"mtime": source_date_epoch()},
          makes="`out/dist/`", quick_repro=True, builds=(HERE, CANADIAN)),
)
