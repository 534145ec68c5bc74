"""Extraction of a source tarball into a new folder that no member can leave.

Built so that escaping is impossible rather than checked for, whatever the member order:
- every write starts from the new folder's own descriptor and walks one component at a time
  with O_NOFOLLOW, so nothing is ever written, created or changed through a symlink, whatever
  is on disk;
- the archive's own members decide what a path is: a member whose path passes through a
  symlink of the archive is refused, and no path is written twice (a later member cannot
  re-point a link or replace a file that earlier ones relied on);
- a hard link may only name a regular file extracted before it (never a link, never outside);
  attributes are set on descriptors we opened, never through a path;
- when all members are in, every symlink's target is resolved against the archive's members
  and must stay inside the tree (no link to `/` or outside is kept).
Refused too: absolute paths, `..`, devices and FIFOs, a flat tarball (no top folder), more
than one top folder, and more than MAX_MEMBERS members or MAX_BYTES bytes. The top folder
(`gcc-16.2.0/`) is stripped. Ownership never comes from the archive; modes lose
setuid/setgid/sticky and the owner may always write (patches must apply). Nothing is left
on failure.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import tarfile
from collections import OrderedDict
from pathlib import Path, PurePosixPath

from .download import sha256_stream
from ..errors import UnpackError

MAX_MEMBERS = 1_000_000      # gcc has ~130k
MAX_BYTES = 16 << 30         # unpacked; gcc is ~1 GiB
MAX_LINK_HOPS = 40           # as Linux's own limit on symlinks in one lookup
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_UNSAFE = "this archive is unsafe; get it from another location"


def extract(archive: Path, dest: Path, sha256: str = "", only: tuple[str, ...] = ()) -> None:
    """Extract `archive` into `dest`, which must not exist; nothing is left on failure.
    With `sha256`, the bytes extracted are the bytes that hash was checked on (one open file).
    With `only` (globs of paths below the top folder), members outside them are not written:
    every member is still read and checked, and what is written is safe on its own. A glob
    that starts with `!` leaves out what it matches; the last glob matching a path decides
    (`*`, `!gcc/testsuite`, `gcc/testsuite/selftests`: all but gcc's tests, less one folder)."""
    archive, dest = Path(archive), Path(dest)
    if dest.exists() or dest.is_symlink():
        raise UnpackError(f"{dest} already exists", fix="remove it first")
    try:
        f = open(archive, "rb")
    except OSError as e:
        raise UnpackError(f"cannot read: {e.strerror}", where=str(archive)) from None
    with f:
        if sha256:
            check_unchanged(f, str(archive), sha256)
        dest.mkdir(parents=True)
        try:
            globs = tuple((g.startswith("!"), tuple(g.removeprefix("!").split("/"))) for g in only)
            _Extractor(dest, archive.name, globs).run(f)
        except UnpackError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        except (tarfile.TarError, OSError, EOFError, ValueError, OverflowError) as e:
            shutil.rmtree(dest, ignore_errors=True)
            raise UnpackError(f"cannot extract: {e}", where=str(archive),
                              fix="the file is damaged; delete it from distfiles to fetch it again") from None
        except BaseException:        # Ctrl-C: still nothing half-written
            shutil.rmtree(dest, ignore_errors=True)
            raise


def check_unchanged(f, where: str, expected: str) -> None:
    """The open file still has the sha256 it was verified with; rewound for reading."""
    got = sha256_stream(f)
    if got != expected:
        raise UnpackError(f"changed since it was verified\n  expected: {expected}\n  got:      {got}", where=where,
                          fix="something replaced the file; remove it and run again to fetch a verified copy")
    f.seek(0)


class _Extractor:
    """One extraction: the members seen so far, and descriptors of the folders written to."""

    def __init__(self, dest: Path, archive: str, only: tuple[tuple[bool, tuple[str, ...]], ...] = ()):
        self.dest = dest
        self.archive = archive
        self.only = only
        self.top = ""
        self.kinds: dict[str, str] = {}            # stripped path -> "dir", "file" or "symlink"
        self.links: dict[str, str] = {}            # symlink path -> its target
        self.dirs: list[tuple[str, int, int]] = []  # (path, mode, mtime) of folder members
        self.fds: OrderedDict[str, int] = OrderedDict()   # a few open folders, by path
        self.members = self.size = 0

    def run(self, f) -> None:
        self.fds[""] = os.open(self.dest, _DIR_FLAGS)
        try:
            with tarfile.open(fileobj=f, mode="r|*") as tar:  # one streaming pass, even for .xz
                for member in tar:
                    self._member(tar, member)
            if not self.top:
                raise UnpackError("the archive has no members", where=self.archive,
                                  fix="the file is not a source tarball; get it from another location")
            for path, target in self.links.items():
                self._resolve_inside(path, target)
            for path, mode, mtime in self.dirs:
                self._set_attrs(path, mode, mtime)
        finally:
            for fd in self.fds.values():
                os.close(fd)

    # -- one member ------------------------------------------------------------------------

    def _refuse(self, member: tarfile.TarInfo, what: str, fix: str = _UNSAFE):
        raise UnpackError(what, where=f"{self.archive}: member {member.name!r}", fix=fix)

    def _member(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.members += 1
        if self.members > MAX_MEMBERS:
            self._refuse(member, f"more than {MAX_MEMBERS} members")
        parts = self._parts(member)
        if parts is None:
            return
        path = "/".join(parts)
        if self.only and not self._wanted(parts):
            return   # not written: links through it or to it are then ordinary folders or dangling
        if path in self.kinds and not (member.isdir() and self.kinds[path] == "dir"):
            self._refuse(member, "a second member with this path (it could re-point a link or "
                                 "replace a file the earlier members relied on)")
        parent = self._parent_fd(member, parts[:-1])
        name = parts[-1]
        if member.isdir():
            if path not in self.kinds:
                os.mkdir(name, 0o700, dir_fd=parent)
                self.kinds[path] = "dir"
            self.dirs.append((path, (member.mode & 0o777) | 0o700, int(member.mtime)))
        elif member.isreg():
            self._file(tar, member, parent, name)
            self.kinds[path] = "file"
        elif member.issym():
            target = member.linkname
            if not target or target.startswith("/") or "\0" in target:
                self._refuse(member, f"symlink to {target!r} points outside the tree")
            os.symlink(target, name, dir_fd=parent)
            self.kinds[path], self.links[path] = "symlink", target
        else:  # hard link (_parts refused every other type)
            self._hardlink(member, parent, name)
            self.kinds[path] = "file"

    def _wanted(self, parts: list[str]) -> bool:
        """The last of the `only` globs that matches the path, or a folder it is in (component
        by component: `arch/*/Makefile` is arch/x86/Makefile, not arch/x86/boot/Makefile), is
        not a `!` one."""
        wanted = False
        for leave_out, glob in self.only:
            if len(parts) >= len(glob) and all(fnmatch.fnmatchcase(part, g) for part, g in zip(parts, glob)):
                wanted = not leave_out
        return wanted

    def _parts(self, member: tarfile.TarInfo) -> list[str] | None:
        """The member's path below the top folder, as components; None for the top folder."""
        name = member.name
        parts = PurePosixPath(name).parts
        if name.startswith("/") or PurePosixPath(name).is_absolute():
            self._refuse(member, "absolute path in archive")
        if ".." in parts:
            self._refuse(member, "'..' in a member path")
        if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
            self._refuse(member, "device file or FIFO in a source archive")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            self._refuse(member, f"unsupported member type {member.type!r}")
        if not parts:  # "./": the archive's root itself
            if member.isdir():
                return None
            self._refuse(member, "empty member name")
        if not self.top:
            self.top = parts[0]
        elif parts[0] != self.top:
            self._refuse(member, f"outside the top folder {self.top!r}: the archive has more than one",
                         fix="a source tarball unpacks into one folder; get it from another location")
        if len(parts) == 1:
            if not member.isdir():
                self._refuse(member, "not inside a top folder: a flat tarball (its files are not under "
                                     "one 'name-version/' folder)",
                             fix="repack it with a top folder, or get the release tarball from upstream")
            return None
        return list(parts[1:])

    def _parent_fd(self, member: tarfile.TarInfo, parts: list[str]) -> int:
        """A descriptor of the member's folder, made where missing; never through a symlink."""
        for i in range(len(parts)):
            kind = self.kinds.get("/".join(parts[:i + 1]))
            if kind == "symlink":
                self._refuse(member, f"its path passes through the symlink {'/'.join(parts[:i + 1])!r} "
                                     "(what it writes could land outside the tree)")
            if kind == "file":
                self._refuse(member, f"its path passes through the file {'/'.join(parts[:i + 1])!r}")
        return self._walk(parts)

    def _walk(self, parts: list[str]) -> int:
        """Open (making what is missing) the folder at `parts`, a component at a time with
        O_NOFOLLOW from the tree's own descriptor; a few descriptors are kept for the next member."""
        key = "/".join(parts)
        if key in self.fds:
            self.fds.move_to_end(key)
            return self.fds[key]
        have = max((i for i in range(len(parts)) if "/".join(parts[:i]) in self.fds), default=0)
        fd = os.dup(self.fds["/".join(parts[:have])])
        try:
            for i in range(have, len(parts)):
                sub = "/".join(parts[:i + 1])
                if sub not in self.kinds:  # a folder the archive implies without a member
                    os.mkdir(parts[i], 0o755, dir_fd=fd)
                    self.kinds[sub] = "dir"
                child = os.open(parts[i], _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        self.fds[key] = fd
        if len(self.fds) > 32:  # the oldest, never the root nor the one just opened
            path = next(p for p in self.fds if p)
            os.close(self.fds.pop(path))
        return fd

    def _file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, name: str) -> None:
        self.size += member.size
        if self.size > MAX_BYTES:
            self._refuse(member, f"the archive unpacks to more than {MAX_BYTES >> 30} GiB")
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        with os.fdopen(fd, "wb") as out:
            src = tar.extractfile(member)
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            # no setuid/setgid/sticky; the owner can write (patches must apply)
            os.fchmod(fd, (member.mode & 0o777) | 0o600)
            os.utime(fd, (int(member.mtime), int(member.mtime)))

    def _hardlink(self, member: tarfile.TarInfo, parent: int, name: str) -> None:
        target = PurePosixPath(member.linkname).parts
        if member.linkname.startswith("/") or ".." in target or len(target) < 2 or target[0] != self.top:
            self._refuse(member, f"hard link to {member.linkname!r} points outside the tree")
        inner = list(target[1:])
        if self.kinds.get("/".join(inner)) != "file":
            self._refuse(member, f"hard link to {member.linkname!r}, which is not a regular file "
                                 "extracted before it")
        src_dir = self._parent_fd(member, inner[:-1])
        os.link(inner[-1], name, src_dir_fd=src_dir, dst_dir_fd=parent, follow_symlinks=False)

    # -- after the last member -----------------------------------------------------------------

    def _resolve_inside(self, path: str, target: str) -> None:
        """Resolve a symlink as the kernel would, against the archive's own members; refuse it
        if it leaves the tree at any step or loops."""
        hops = 0

        def walk(stack: list[str], link: str) -> list[str]:
            nonlocal hops
            for part in link.split("/"):
                if part in ("", "."):
                    continue
                if part == "..":
                    if not stack:
                        raise UnpackError(f"symlink to {target!r} points outside the tree",
                                          where=f"{self.archive}: member {self.top + '/' + path!r}", fix=_UNSAFE)
                    stack.pop()
                    continue
                stack.append(part)
                inner = self.links.get("/".join(stack))
                if inner is not None:
                    hops += 1
                    if hops > MAX_LINK_HOPS:
                        raise UnpackError(f"symlink to {target!r} loops",
                                          where=f"{self.archive}: member {self.top + '/' + path!r}", fix=_UNSAFE)
                    stack = walk(stack[:-1], inner)
            return stack

        walk(path.split("/")[:-1], target)

    def _set_attrs(self, path: str, mode: int, mtime: int) -> None:
        """A folder member's mode and time, set last (its files would change the time)."""
        parts = path.split("/")
        fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=self._walk(parts[:-1]))
        try:
            os.fchmod(fd, mode)
            os.utime(fd, (mtime, mtime))
        finally:
            os.close(fd)
