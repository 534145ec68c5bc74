"""Safe extraction of a source tarball into a fresh directory.

Refused, with the archive and member named: absolute paths, `..` components, links whose
target lies outside the tree (checked against the real, on-disk path, so a chain of links
cannot escape either), device files and FIFOs. The first path component (`gcc-16.2.0/`) is
stripped. Written by hand because Python's own `data` filter is missing from the Python of
the Debian releases we support (3.11.2); ownership is never taken from the archive.
"""
from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path, PurePosixPath

from .errors import UnpackError



def _inside(root: str, path: str) -> bool:
    return path == root or path.startswith(root + os.sep)


def _strip(name: str) -> str:
    parts = PurePosixPath(name).parts
    return str(PurePosixPath(*parts[1:])) if len(parts) > 1 else ""


def _check(member: tarfile.TarInfo, archive: str, root: str) -> str | None:
    """Return the member's stripped name, or None to skip it; raise if it is unsafe."""
    name = member.name
    where = f"{archive}: member {name!r}"
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise UnpackError("absolute path in archive", where=where,
                          fix="this archive is unsafe; get it from another location")
    if ".." in PurePosixPath(name).parts:
        raise UnpackError("'..' in a member path", where=where,
                          fix="this archive is unsafe; get it from another location")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise UnpackError("device file or FIFO in a source archive", where=where,
                          fix="this archive is unsafe; get it from another location")
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        raise UnpackError(f"unsupported member type {member.type!r}", where=where)
    stripped = _strip(name)
    if not stripped:
        return None
    target_dir = os.path.realpath(os.path.join(root, os.path.dirname(stripped)))
    if not _inside(root, target_dir):
        raise UnpackError("member would be written through a link to outside the tree", where=where,
                          fix="this archive is unsafe; get it from another location")
    if member.issym():
        link = member.linkname
        resolved = os.path.realpath(os.path.join(target_dir, link))
        if link.startswith("/") or not _inside(root, resolved):
            raise UnpackError(f"symlink to {link!r} points outside the tree", where=where,
                              fix="this archive is unsafe; get it from another location")
    if member.islnk():
        if member.linkname.startswith("/") or ".." in PurePosixPath(member.linkname).parts:
            raise UnpackError(f"hard link to {member.linkname!r} points outside the tree", where=where,
                              fix="this archive is unsafe; get it from another location")
    return stripped


def extract(archive: Path, dest: Path) -> None:
    """Extract `archive` into `dest`, which must not exist; nothing is left on failure."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists():
        raise UnpackError(f"{dest} already exists", fix="remove it first")
    dest.mkdir(parents=True)
    root = os.path.realpath(dest)
    uid, gid = os.getuid(), os.getgid()
    try:
        with tarfile.open(archive, mode="r|*") as tar:  # one streaming pass, even for .xz
            for member in tar:
                stripped = _check(member, archive.name, root)
                if stripped is None:
                    continue
                member.name = stripped
                if member.islnk():
                    member.linkname = _strip(member.linkname)
                # no setuid/setgid/sticky; the owner can write (patches must apply)
                member.mode = (member.mode & 0o777) | (0o700 if member.isdir() else 0o600)
                member.uid, member.gid, member.uname, member.gname = uid, gid, "", ""
                kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
                tar.extract(member, root, set_attrs=not member.issym(), **kwargs)  # checked above
    except UnpackError:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except (tarfile.TarError, OSError, EOFError) as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise UnpackError(f"cannot extract: {e}", where=str(archive),
                          fix="the file is damaged; delete it from distfiles to fetch it again") from None
