"""The two source stages of a package version: fetch (verified files) and prepare (tree).

fetch   -> state/fetch/<pkg>-<ver>.json: the verified source file and remote patches.
prepare -> src/<pkg>-<ver>/: unpacked into a temporary folder, patched, then renamed, so a
           tree that exists is always complete; a marker inside records what made it.

Files in distfiles can change after they were fetched (another run, a user, a disk): a fetch
stays current only while each file is the one that was hashed (size, times, inode; else it
is hashed again), and the tree is unpacked from the very bytes hashed just before.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from . import debian, patching, unpack
from .download import file_lock, sha256_file
from ..errors import ToolchainError
from .fetch import Fetcher
from .recipes import Version
from ..settings import Settings
from ..say import say

MARKER = ".musl-toolchain-source.json"
TMP_MARKER = ".musl-toolchain-tmp"   # in a temporary folder of prepare(): ours to remove


def make_fetcher(settings: Settings) -> Fetcher:
    apt = debian.Apt(settings.state / "apt", suites=settings.debian_suites) if settings.debian else None
    return Fetcher(settings.distfiles, mirrors=settings.mirrors, offline=settings.offline,
                   upstream=settings.upstream, apt=apt)


def fetch_stamp(settings: Settings, version: Version) -> Path:
    return settings.state / "fetch" / f"{version.key}.json"


def tree_path(settings: Settings, version: Version) -> Path:
    return settings.sources / version.key


def _verified_path(settings: Settings, version: Version) -> Path:
    return settings.state / "fetch" / f"{version.key}.verified.json"


def _identity(path: Path) -> list[int]:
    """What changes whenever a file's bytes may have: the change time cannot be set back."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def _remember(settings: Settings, version: Version, files: dict[str, str]) -> None:
    """Record that each file ({path: sha256}) had its sha256 while its identity was this."""
    seen = {}
    for path, sha in files.items():
        before = _identity(Path(path))
        if sha256_file(Path(path)) == sha and _identity(Path(path)) == before:
            seen[path] = [sha, before]
    write_json(_verified_path(settings, version), seen)


def _still_verified(settings: Settings, version: Version, files: dict[str, str]) -> bool:
    """Each file still has its sha256: unchanged since it was hashed, or hashed again now."""
    try:
        seen = json.loads(_verified_path(settings, version).read_text())
    except (OSError, ValueError):
        seen = {}
    try:
        if all(seen.get(p) == [sha, _identity(Path(p))] for p, sha in files.items()):
            return True
        if any(sha256_file(Path(p)) != sha for p, sha in files.items()):
            return False
    except OSError:
        return False
    _remember(settings, version, files)
    return True


def write_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file + rename)."""
    write_bytes(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


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
    say(f"  {version.key}: {got.path.name} verified (sha256 {got.location.sha256[:16]}...) "
        f"from {got.origin}")
    _remember(settings, version, _files(record))
    write_json(fetch_stamp(settings, version), record)
    return record


def _files(record: dict) -> dict[str, str]:
    """{path: sha256} of the source and remote patches a fetch stamp names."""
    return {p["path"]: p["sha256"] for p in [record["source"], *record["patches"].values()]}


def fetch_is_current(settings: Settings, version: Version) -> bool:
    """The stamp exists and the files it names still have their sha256."""
    try:
        record = json.loads(fetch_stamp(settings, version).read_text())
        return _still_verified(settings, version, _files(record))
    except (OSError, ValueError, KeyError, TypeError):
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
        **({"extract": list(version.extract)} if version.extract else {}),
    }
    dest = tree_path(settings, version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest):
        if _made_here(dest) == wanted:
            return dest  # another run made exactly this tree meanwhile
        for stale in dest.parent.glob(f".{dest.name}.tmp-*"):  # left by a killed run; we hold the lock
            if (stale / TMP_MARKER).is_file():
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.tmp-"))
        (tmp / TMP_MARKER).write_text("")
        try:
            tree = tmp / "tree"
            say(f"  {version.key}: unpacking {Path(record['source']['path']).name}")
            unpack.extract(Path(record["source"]["path"]), tree, sha256=record["source"]["sha256"],
                           only=version.extract)
            for p in patches:
                path = Path(record["patches"][p.file]["path"]) if p.remote else p.path
                label = f"{p.file} ({path})" if p.remote else str(path)
                say(f"  {version.key}: applying {p.file}")
                if p.remote:
                    with open(path, "rb") as f:
                        unpack.check_unchanged(f, str(path), record["patches"][p.file]["sha256"])
                patching.apply(path, tree, label=label)
            (tree / MARKER).write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n")
            if dest.exists():
                old = tmp / "old"
                os.replace(dest, old)
            os.replace(tree, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _made_here(dest: Path) -> dict | None:
    """What the tree at `dest` was made from, None if there is none; a folder this tool did
    not make stops the run (it is never deleted)."""
    if not dest.exists() and not dest.is_symlink():
        return None
    try:
        made = json.loads((dest / MARKER).read_text())
        if isinstance(made, dict) and "source_sha256" in made and not dest.is_symlink():
            return made
    except (OSError, ValueError):
        pass
    raise ToolchainError(f"{dest} exists, but it is not a source tree this tool made (no valid {MARKER})",
                         fix="move it away (it is left untouched), or choose another out= folder")


