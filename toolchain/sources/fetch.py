"""Get the verified bytes of a source: distfiles folder, mirrors, upstream, Debian's archive.

Locations are tried in that order; every candidate is checked against the recipe's sha256
before it is used, and a failure at one location moves on to the next, so the final error
lists what each location said.
"""
from __future__ import annotations

import fnmatch
import os
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .debian import Apt
from .download import DownloadError, Limits, download, file_lock, retrying_session, verify
from ..errors import FetchError
from .recipes import Location
from ..say import say


@dataclass(frozen=True)
class Fetched:
    path: Path
    location: Location
    origin: str            # what actually served it: distfiles, a URL, Debian version


class Fetcher:
    def __init__(self, distfiles: Path, *, mirrors: tuple[str, ...] = (), offline: bool = False,
                 upstream: bool = True, apt: Apt | None = None, timeout: float = 30.0,
                 retries: int = 4, backoff: float = 1.0, limits: Limits | None = None):
        self.distfiles = Path(distfiles)
        self.mirrors = tuple(m.rstrip("/") for m in mirrors)
        self.offline = offline
        self.upstream = upstream
        self.apt = apt
        limits = limits or Limits()
        self.opts = {"timeout": timeout, "retries": retries, "backoff": backoff, "limits": limits}
        self.session = retrying_session(retries, backoff, limits)
        self.session.headers["User-Agent"] = "musl-toolchain-fetch"

    def fetch(self, locations: tuple[Location, ...], what: str) -> Fetched:
        self.distfiles.mkdir(parents=True, exist_ok=True)
        tried: list[str] = []
        places = [self._from_distfiles]
        if not self.offline:
            places += [self._from_mirrors, self._from_upstream, self._from_debian]
        for place in places:
            result = place(locations, tried)
            if result:
                return result
        names = ", ".join(dict.fromkeys(loc.stored_name for loc in locations))
        if self.offline:
            raise FetchError(f"{what}: none of [{names}] is in {self.distfiles}, and offline mode "
                             "forbids the network" + _listing(tried),
                             fix=f"copy one of those files into {self.distfiles}, or run "
                                 "`doit download` on a machine with network and copy its distfiles")
        raise FetchError(f"{what}: no location delivered a file with the pinned sha256" + _listing(tried),
                         fix=f"put one of [{names}] into {self.distfiles}, add a mirror that has it "
                             "(mirrors=URL), or fix the recipe if upstream re-rolled the file")

    # -- the four kinds of place, in order -----------------------------------------------

    def _from_distfiles(self, locations, tried):
        for loc in locations:
            for name, member in ((loc.stored_name, False), (loc.file, True)):
                if member and not loc.member:
                    continue
                for path in sorted(self.distfiles.glob(name)) if "*" in name else [self.distfiles / name]:
                    if not path.is_file():
                        continue
                    try:
                        if member:
                            return Fetched(self._extract_member(path, loc), loc, f"distfiles {path.name}")
                        with file_lock(path):
                            verify(path, loc.sha256, f"distfiles {path}")
                        return Fetched(path, loc, f"distfiles {path.name}")
                    except FetchError as e:
                        self._failed(tried, f"{path}: {e.what}")
        return None

    def _from_mirrors(self, locations, tried):
        for mirror in self.mirrors:
            for loc in locations:
                url = f"{mirror}/{loc.stored_name}"
                try:
                    size = _known_size(loc.sha256, locations)
                    return Fetched(self._download(url, loc.stored_name, loc.sha256, size), loc, url)
                except FetchError as e:
                    self._failed(tried, f"mirror {url}: {_without(e.what, url)}")
        return None

    def _from_upstream(self, locations, tried):
        if not self.upstream:
            return None
        for loc in locations:
            if loc.kind != "url":
                continue
            try:
                path = self._download(loc.url, loc.file, loc.sha256, _known_size(loc.sha256, locations))
                return Fetched(path, loc, loc.url)
            except FetchError as e:
                self._failed(tried, f"{loc.url}: {_without(e.what, loc.url)}")
        return None

    def _from_debian(self, locations, tried):
        debian_locs = [loc for loc in locations if loc.kind == "debian"]
        if not debian_locs:
            return None
        if self.apt is None or not Apt.available():
            self._failed(tried, "Debian's source archive: not used (no apt-get here, or disabled)")
            return None
        for refresh in (False, True):  # a day-old index may name files the archive dropped
            try:
                self.apt.update(force=refresh)
            except FetchError as e:
                self._failed(tried, f"Debian's source archive: {e.what}")
                return None
            result = self._from_debian_index(debian_locs, locations, tried)
            if result or self.apt.just_updated:
                return result
        return None

    def _from_debian_index(self, debian_locs, locations, tried):
        for loc in debian_locs:
            versions = self.apt.candidates(loc.debian, loc.debian_upstream_version)
            if not versions:
                self._failed(tried, f"Debian: no version {loc.debian_upstream_version}-* of source package "
                             f"{loc.debian} in suites {' '.join(self.apt.suites)}")
            for version in versions:
                files = self.apt.file_uris(loc.debian, version)
                names = [n for n in files if fnmatch.fnmatchcase(n, loc.file)]
                if not names:
                    self._failed(tried, f"Debian {loc.debian} {version}: no file {loc.file}")
                    continue
                url, index_sha, index_size = files[names[0]]
                if not loc.member and index_sha != loc.sha256:
                    self._failed(tried, f"Debian {loc.debian} {version}: index lists {names[0]} with sha256 "
                                 f"{index_sha}, recipe pins {loc.sha256}")
                    continue
                try:
                    # a member's size is not the outer file's: only a location of the same bytes counts
                    size = _known_size(index_sha, locations) or index_size
                    path = self._download(url, names[0], index_sha, size)
                    if loc.member:
                        path = self._extract_member(path, loc)
                    return Fetched(path, loc, f"Debian {loc.debian} {version}: {url}")
                except FetchError as e:
                    self._failed(tried, f"Debian {loc.debian} {version}: {e.what}")
        return None

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _failed(tried: list[str], message: str) -> None:
        """Record a location that did not work, and say so now: a later one may still work."""
        tried.append(message)
        say(f"  skipped: {_indent(message)}", err=True)

    def _download(self, url: str, name: str, sha256: str, size: int) -> Path:
        return download(url, self.distfiles / name, sha256, session=self.session, size=size, **self.opts)

    def _extract_member(self, archive: Path, loc: Location) -> Path:
        """Take `loc.member` out of `archive` into distfiles, verified, atomically."""
        dest = self.distfiles / loc.stored_name
        with file_lock(dest):
            if dest.exists():  # another run extracted it meanwhile; a bad copy is moved aside
                try:
                    verify(dest, loc.sha256, f"distfiles {dest}")
                    return dest
                except DownloadError as e:
                    say(f"  {_indent(e.what)}", err=True)
            tmp = None
            try:
                with tarfile.open(archive) as tar:
                    try:
                        info = tar.getmember(loc.member)
                    except KeyError:
                        raise DownloadError(f"{archive.name} has no member {loc.member}") from None
                    if not info.isfile():
                        raise DownloadError(f"{loc.member} in {archive.name} is not a regular file")
                    src = tar.extractfile(info)
                    fd, tmp = tempfile.mkstemp(dir=self.distfiles, prefix=f".{dest.name}.")
                    with os.fdopen(fd, "wb") as out:
                        while block := src.read(1 << 20):
                            out.write(block)
                verify(Path(tmp), loc.sha256, f"{archive.name} member {loc.member}", ours=True)
                os.replace(tmp, dest)
            except (tarfile.TarError, OSError, EOFError) as e:
                raise DownloadError(f"cannot read {archive.name}: {e}") from None
            finally:
                if tmp and os.path.exists(tmp):
                    os.unlink(tmp)
        return dest


def _known_size(sha256: str, locations) -> int:
    """The size of the bytes with this sha256, if a location of them states it."""
    return next((loc.size for loc in locations if loc.size and loc.sha256 == sha256), 0)


def _without(what: str, url: str) -> str:
    """A download's message without its leading URL, which the caller names already."""
    return what[len(url):].lstrip(": ") if what.startswith(url + ":") or what.startswith(url + " ") else what


def _indent(text: str) -> str:
    return text.replace("\n", "\n    ")


def _listing(tried: list[str]) -> str:
    return "".join(f"\n  - {_indent(t)}" for t in tried)
