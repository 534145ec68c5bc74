"""The deliverable of a target: an env file in the prefix, a manifest (versions, the sha256 of
every input, configure flags), and a tarball of the prefix with sorted entries, fixed owner
and mtime, and no compression timestamp."""
from __future__ import annotations

import gzip
import json
import os
import tarfile
import tempfile
from pathlib import Path

from .download import sha256_file
from .sources import fetch_stamp, patch_hashes, write_json

MANIFEST = "musl-toolchain.json"
ENV_FILE = "env.sh"

ENV_TEMPLATE = """\
# Use the {triple} toolchain in this shell:   . {prefix}/env.sh
# (bash and zsh find this file's folder themselves, so the toolchain can be moved.)
if [ -n "${{BASH_SOURCE:-}}" ]; then _tc_env="${{BASH_SOURCE}}"
elif [ -n "${{ZSH_VERSION:-}}" ]; then eval '_tc_env="${{(%):-%x}}"'
else _tc_env=""; fi
_tc_prefix="{prefix}"
if [ -n "$_tc_env" ] && [ -x "$(dirname "$_tc_env")/bin/{triple}-gcc" ]; then
  _tc_prefix="$(cd "$(dirname "$_tc_env")" && pwd)"
fi
export PATH="$_tc_prefix/bin:$PATH"
export CROSS_COMPILE={triple}-
export CC={triple}-gcc CXX={triple}-g++ AR={triple}-ar RANLIB={triple}-ranlib STRIP={triple}-strip
export MUSL_TOOLCHAIN_SYSROOT="$_tc_prefix/{triple}"
export PKG_CONFIG_SYSROOT_DIR="$MUSL_TOOLCHAIN_SYSROOT"
export PKG_CONFIG_LIBDIR="$MUSL_TOOLCHAIN_SYSROOT/lib/pkgconfig"
unset _tc_env _tc_prefix
"""


def source_date_epoch() -> int:
    try:
        return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        return 0


def manifest(b, report: dict) -> dict:
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
    return {"target": b.target.name, "triple": b.triple,
            "versions": {p: v.version for p, v in b.versions.items()},
            "inputs": inputs,
            "configure": {n: s["config"].get("configure", []) for n, s in sorted(report["stages"].items())}}


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
            paths = [src]
            for root, dirs, files in os.walk(src):  # does not follow links (sysroot/usr -> .)
                paths += [Path(root) / n for n in dirs + files]
            paths = [src] + sorted(paths[1:], key=lambda p: str(p.relative_to(src)))
            for path in paths:
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


def package(b, report: dict) -> Path:
    (b.prefix / ENV_FILE).write_text(ENV_TEMPLATE.format(triple=b.triple, prefix=b.prefix))
    data = manifest(b, report)
    write_json(b.prefix / MANIFEST, data)
    gcc = b.versions["gcc"].version
    musl = b.versions["musl"].version
    name = f"{b.triple}-gcc{gcc}-musl{musl}"
    dest = b.settings.out / "dist" / f"{name}.tar.gz"
    entries = tarball(b.prefix, dest, name, source_date_epoch())
    write_json(dest.with_name(dest.name + ".manifest.json"), {**data, "tarball_sha256": sha256_file(dest),
                                                             "entries": entries})
    return dest
