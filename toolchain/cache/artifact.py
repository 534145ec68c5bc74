"""One cached toolchain, stored under its input key: the package stage's tarball
(toolchain.tar.gz), artifact.json (the key, the tarball's sha256 and size, the toolchain's
manifest and the key's inputs) and artifact.json.sig (a signature of artifact.json's exact
bytes per line). artifact.json is written last, so a reader that finds it finds the rest.

Restoring trusts nothing it reads: artifact.json must name the key asked for and be signed
by a trusted key, the tarball must have the signed sha256 and size, it is unpacked by the
same safe extractor as the sources into a folder of its own, and every file must match the
toolchain's own sha256 list before the folder is renamed into place."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from ..build.context import Build
from ..sources import unpack
from ..sources.download import sha256_file
from ..sources.store import write_bytes, write_json
from . import key as key_mod
from . import sign
from .backends import CacheError, Missing

FORMAT = 1
ARTIFACT = "artifact.json"
SIGNATURES = "artifact.json.sig"
TARBALL = "toolchain.tar.gz"
MAX_TARBALL = 4 << 30
SUMS = "musl-toolchain.sha256"


def dist_files(b: Build) -> tuple[Path, Path]:
    from ..build.stages.package import tarball_name
    tarball = b.settings.out / "dist" / f"{tarball_name(b)}.tar.gz"
    return tarball, tarball.with_name(tarball.name + ".manifest.json")


def provenance_files(b: Build) -> tuple[Path, Path]:
    """artifact.json and its signatures beside the tarball in out/dist, so that a release
    ships them (the package stage removes them when it writes a new tarball)."""
    from ..build.stages.package import provenance_files as beside
    return beside(dist_files(b)[0])


def keep_provenance(b: Build, data: bytes, signatures: list[str]) -> tuple[Path, Path]:
    """Write them; returns their paths (the signatures' only if there are any)."""
    return _write_provenance(dist_files(b)[0], data, signatures)


def _write_provenance(tarball: Path, data: bytes, signatures: list[str]) -> tuple[Path, Path]:
    from ..build.stages.package import provenance_files as beside
    art, sig = beside(tarball)
    if signatures:
        write_bytes(sig, "".join(s + "\n" for s in signatures).encode())
    else:
        sig.unlink(missing_ok=True)
    write_bytes(art, data)
    return art, sig


def describe(b: Build, key: str) -> bytes:
    """artifact.json for the toolchain just packaged."""
    tarball, manifest = dist_files(b)
    data = {"format": FORMAT, "key": key, "toolchain": b.name, "triple": b.triple,
            "tarball": {"file": TARBALL, "name": tarball.name, "sha256": sha256_file(tarball),
                        "size": tarball.stat().st_size},
            "manifest": json.loads(manifest.read_text()), "inputs": key_mod.inputs(b)}
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


def publish(b: Build, backend, secret_file: Path | None) -> str:
    """Upload the packaged toolchain under its key; returns the key."""
    key = key_mod.key(b)
    data = describe(b, key)
    tarball, _ = dist_files(b)
    signatures = [sign.sign(data, secret_file)] if secret_file else []
    art, sig = keep_provenance(b, data, signatures)     # the files the backend then uploads
    backend.put(key, TARBALL, tarball)
    if signatures:
        backend.put(key, SIGNATURES, sig)
    backend.put(key, ARTIFACT, art)
    return key


def _parse(data: bytes, key: str, name: str | None, where: str) -> dict:
    """artifact.json checked: this tool's format, for `key` (and toolchain `name` if given)."""
    try:
        art = json.loads(data)
        t = art["tarball"]
        ok = (art["format"] == FORMAT and isinstance(t["sha256"], str) and len(t["sha256"]) == 64
              and isinstance(t["size"], int) and 0 < t["size"] <= MAX_TARBALL and isinstance(t["name"], str)
              and t["name"].endswith(".tar.gz") and "/" not in t["name"]
              and isinstance(art["manifest"], dict) and isinstance(art["toolchain"], str))
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise CacheError("is not an artifact.json of this tool's format", where=where)
    if art["key"] != key or (name is not None and art["toolchain"] != name):
        raise CacheError(f"is for {art['toolchain']} with key {str(art['key'])[:16]}..., "
                         f"not {name or 'a toolchain'} with key {key[:16]}...", where=where)
    return art


def _signed(backend, key: str, trusted: list[sign.PublicKey] | None, name: str | None) -> tuple[bytes, list[str], dict, str]:
    """artifact.json under `key`, its signatures, what it says and who signed it; raises
    Missing when the key is not there."""
    where = f"{backend}/{key}/{ARTIFACT}"
    data = backend.read_small(key, ARTIFACT)
    art = _parse(data, key, name, where)
    try:
        signatures = [s for s in backend.read_small(key, SIGNATURES).decode(errors="replace").splitlines() if s]
    except Missing:
        signatures = []
    return data, signatures, art, sign.verify(data, signatures, trusted, where=where)


def download(backend, key: str, trusted: list[sign.PublicKey] | None, folder: Path) -> tuple[Path, dict, str]:
    """The tarball cached under `key` (signature and sha256 checked) and its artifact.json,
    written into folder; returns the tarball's path, what artifact.json says and its signer."""
    try:
        data, signatures, art, signer = _signed(backend, key, trusted, None)
    except Missing:
        raise CacheError(f"has no toolchain under key {key}", where=str(backend),
                         fix="`python -m toolchain key <target> cache=...` prints a toolchain's key") from None
    tarball = folder / art["tarball"]["name"]
    backend.fetch(key, TARBALL, tarball, art["tarball"]["sha256"], art["tarball"]["size"])
    _write_provenance(tarball, data, signatures)
    return tarball, art, signer


def check_sums(root: Path) -> int:
    """Every regular file under root is in its sha256 list with that hash, and every listed
    file is there. Returns how many files were checked."""
    listed = {}
    for line in (root / SUMS).read_text().splitlines():
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64:
            raise CacheError(f"malformed line {line[:80]!r}", where=SUMS)
        listed[name] = digest
    found = set()
    for top, _, files in os.walk(root):
        for name in files:
            path = Path(top, name)
            rel = str(path.relative_to(root))
            if path.is_symlink() or rel == SUMS:
                continue
            found.add(rel)
            if listed.get(rel) != sha256_file(path):
                raise CacheError("differs from the toolchain's own sha256 list" if rel in listed
                                 else "is not in the toolchain's sha256 list", where=rel)
    missing = set(listed) - found
    if missing:
        raise CacheError(f"{len(missing)} listed files are missing, e.g. {sorted(missing)[0]}", where=SUMS)
    return len(found)


def restore(b: Build, backend, trusted: list[sign.PublicKey] | None) -> dict | None:
    """Put the cached toolchain of b's key into b's prefix and out/dist; None on a miss.
    Raises CacheError or SignatureError when what the cache holds cannot be used; nothing
    of it is left then."""
    key = key_mod.key(b)
    where = f"{backend}/{key}/{ARTIFACT}"
    try:
        data, signatures, art, signer = _signed(backend, key, trusted, b.name)
    except Missing:
        return None
    if art["tarball"]["name"] != dist_files(b)[0].name:
        raise CacheError(f"names its tarball {art['tarball']['name']}, expected {dist_files(b)[0].name}", where=where)
    work = b.settings.out / "toolchains" / f".restore-{b.name}"
    shutil.rmtree(work, ignore_errors=True)     # an earlier attempt of ours
    work.mkdir(parents=True)
    try:
        tarball = work / art["tarball"]["name"]
        backend.fetch(key, TARBALL, tarball, art["tarball"]["sha256"], art["tarball"]["size"])
        # one top folder, refused otherwise; what is below it lands in `tree`
        unpack.extract(tarball, work / "tree", sha256=art["tarball"]["sha256"])
        files = check_sums(work / "tree")
        if b.prefix.exists() or b.prefix.is_symlink():
            shutil.rmtree(b.prefix)            # out/toolchains/<name>: this tool's own
        b.prefix.parent.mkdir(parents=True, exist_ok=True)
        os.rename(work / "tree", b.prefix)
        dist, manifest = dist_files(b)
        dist.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tarball, dist)
        write_json(manifest, art["manifest"])
        keep_provenance(b, data, signatures)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record = {"key": key, "from": str(backend), "signed_by": signer, "files": files,
              "tarball_sha256": art["tarball"]["sha256"]}
    write_json(b.work / "restored.json", record)
    return record
