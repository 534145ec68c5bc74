"""The two source stages of a package version: fetch (verified files) and prepare (tree).

fetch   -> state/fetch/<pkg>-<ver>.json: the verified source file and remote patches.
prepare -> src/<pkg>-<ver>/: unpacked into a temporary folder, patched, then renamed, so a
           tree that exists is always complete; a marker inside records what made it.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from . import debian, patching, unpack
from .download import file_lock, sha256_file
from .fetch import Fetcher
from .recipes import Version
from .settings import Settings

MARKER = ".musl-toolchain-source.json"


def make_fetcher(settings: Settings) -> Fetcher:
    apt = debian.Apt(settings.state / "apt", suites=settings.debian_suites) if settings.debian else None
    return Fetcher(settings.distfiles, mirrors=settings.mirrors, offline=settings.offline,
                   upstream=settings.upstream, apt=apt)


def fetch_stamp(settings: Settings, version: Version) -> Path:
    return settings.state / "fetch" / f"{version.key}.json"


def tree_path(settings: Settings, version: Version) -> Path:
    return settings.sources / version.key


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def fetch(settings: Settings, version: Version, fetcher: Fetcher | None = None) -> dict:
    """Fetch and verify the source and remote patches of one version; write its stamp."""
    fetcher = fetcher or make_fetcher(settings)
    got = fetcher.fetch(version.locations, f"{version.package} {version.version}")
    record = {
        "source": {"path": str(got.path), "sha256": got.location.sha256, "variant": got.location.variant,
                   "origin": got.origin, "size": got.path.stat().st_size},
        "patches": {},
    }
    for patch in version.patches:
        if patch.remote and patch.only_for in ("", got.location.variant):
            p = fetcher.fetch(patch.locations, f"{version.package} {version.version} patch {patch.file}")
            record["patches"][patch.file] = {"path": str(p.path), "sha256": p.location.sha256,
                                             "origin": p.origin}
    print(f"  {version.key}: {got.path.name} verified (sha256 {got.location.sha256[:16]}...) "
          f"from {got.origin}", flush=True)
    write_json(fetch_stamp(settings, version), record)
    return record


def fetch_is_current(settings: Settings, version: Version) -> bool:
    """The stamp exists and the files it names are still there, unchanged in size."""
    try:
        record = json.loads(fetch_stamp(settings, version).read_text())
        paths = [record["source"]] + list(record["patches"].values())
        return all(Path(p["path"]).is_file() for p in paths) and \
            Path(record["source"]["path"]).stat().st_size == record["source"]["size"]
    except (OSError, ValueError, KeyError):
        return False


def patch_hashes(version: Version, record: dict) -> dict[str, str]:
    """sha256 of each patch applied to the fetched source (`record` is its fetch stamp)."""
    return {p.file: (record["patches"][p.file]["sha256"] if p.remote else sha256_file(p.path))
            for p in version.patches_for(record["source"]["variant"])}


def prepare(settings: Settings, version: Version) -> Path:
    """Unpack and patch one version into src/<pkg>-<ver>, atomically."""
    record = json.loads(fetch_stamp(settings, version).read_text())
    variant = record["source"]["variant"]
    patches = version.patches_for(variant)
    wanted = {
        "source_sha256": record["source"]["sha256"],
        "variant": variant,
        "patches": patch_hashes(version, record),
    }
    dest = tree_path(settings, version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest):
        marker = dest / MARKER
        if marker.exists() and json.loads(marker.read_text()) == wanted:
            return dest  # another run made exactly this tree meanwhile
        for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # left by a killed run; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
        try:
            tree = tmp / "tree"
            print(f"  {version.key}: unpacking {Path(record['source']['path']).name}", flush=True)
            unpack.extract(Path(record["source"]["path"]), tree)
            for p in patches:
                path = Path(record["patches"][p.file]["path"]) if p.remote else p.path
                label = f"{p.file} ({path})" if p.remote else str(path)
                print(f"  {version.key}: applying {p.file}", flush=True)
                patching.apply(path, tree, label=label)
            (tree / MARKER).write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n")
            if dest.exists():
                old = tmp / "old"
                os.replace(dest, old)
            os.replace(tree, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def is_prepared(settings: Settings, version: Version) -> bool:
    return (tree_path(settings, version) / MARKER).is_file()

