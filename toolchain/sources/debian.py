"""Debian's source archive as a source of tarballs, through the machine's own apt.

The deb-src entries are derived from the machine's apt sources (the archive's address is
never written in this project), kept in a private apt state under the cache folder, so the
system's apt configuration is not touched and no root is needed. apt tells us, for a source
package version, the URL and the sha256 of each of its files (`apt-get source --print-uris`,
checked against Debian's signed index); the file itself is then downloaded like any other.
"""
from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..errors import FetchError
from ..say import say
from .download import file_lock

DEFAULT_SUITES = ("bookworm", "trixie", "forky", "sid")
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
REFRESH_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Archive:
    uri: str
    signed_by: str = ""
    trusted: bool = False    # an unsigned archive the user vouches for (apt's `Trusted: yes`)


def _deb822_stanzas(text: str) -> list[dict[str, str]]:
    stanzas, current, key = [], {}, None
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if current:
                stanzas.append(current)
            current, key = {}, None
        elif line[0] in " \t" and key:
            current[key] += "\n" + line.strip()
        elif ":" in line:
            key, value = line.split(":", 1)
            key = key.strip().lower()
            current[key] = value.strip()
    if current:
        stanzas.append(current)
    return stanzas


def debian_archives(paths: tuple[Path, ...] = APT_SOURCES) -> list[Archive]:
    """The Debian archives (not security/updates suites) that the machine's apt uses."""
    found: list[Archive] = []

    def add(uri: str, suites: list[str], signed_by: str) -> None:
        main_suites = [s for s in suites if not re.search(r"[-/](security|updates|backports)$", s)]
        if main_suites and not any(a.uri == uri for a in found):
            found.append(Archive(uri.rstrip("/"), signed_by))

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files += sorted(p.glob("*.sources")) + sorted(p.glob("*.list"))
        elif p.is_file():
            files.append(p)
    for f in files:
        text = f.read_text(errors="replace")
        if f.suffix == ".sources":
            for st in _deb822_stanzas(text):
                if st.get("enabled", "yes").lower() == "no":
                    continue
                if "deb" not in st.get("types", "").split() and "deb-src" not in st.get("types", "").split():
                    continue
                keyring = st.get("signed-by", "")
                if "\n" in keyring or not keyring.startswith("/"):
                    keyring = ""  # an inline key: let apt use its default keyrings
                if "debian" not in keyring and "debian" not in st.get("uris", ""):
                    continue  # not Debian's archive (e.g. a vendor repository)
                for uri in st.get("uris", "").split():
                    add(uri, st.get("suites", "").split(), keyring)
        else:
            for line in text.splitlines():
                m = re.match(r"^\s*deb(?:-src)?\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)", line)
                if not m or "debian" not in m.group(2):
                    continue
                opts = dict(o.split("=", 1) for o in (m.group(1) or "").split() if "=" in o)
                add(m.group(2), [m.group(3)], opts.get("signed-by", ""))
    return found


def deb_src_stanzas(archives: list[Archive], suites: tuple[str, ...]) -> str:
    out = []
    for a in archives:
        out.append("Types: deb-src\nURIs: {}\nSuites: {}\nComponents: main\n{}{}".format(
            a.uri, " ".join(suites), f"Signed-By: {a.signed_by}\n" if a.signed_by else "",
            "Trusted: yes\n" if a.trusted else ""))
    return "\n".join(out)


class SourceFile(NamedTuple):
    """One file of a source package as the signed index lists it."""

    url: str
    sha256: str
    size: int


class Apt:
    """A private apt state (sources, lists, cache) for Debian source packages."""

    def __init__(self, state_dir: Path, suites: tuple[str, ...] = DEFAULT_SUITES,
                 archives: list[Archive] | None = None):
        self.dir = Path(state_dir)
        self.suites = suites
        self._archives = archives
        self._updated = False

    @property
    def just_updated(self) -> bool:
        """The index was refreshed by this process (so refreshing again would not help)."""
        return self._updated

    @staticmethod
    def available() -> bool:
        return shutil.which("apt-get") is not None

    def _options(self) -> list[str]:
        return ["-o", f"Dir::Etc::SourceList={self.dir / 'sources.list'}",
                "-o", f"Dir::Etc::SourceParts={self.dir / 'sources.list.d'}",
                "-o", f"Dir::State::Lists={self.dir / 'lists'}",
                "-o", f"Dir::Cache={self.dir / 'cache'}",
                "-o", "Debug::NoLocking=1",
                # as root apt drops to user _apt, who cannot write into our private folder
                *(["-o", "APT::Sandbox::User=root"] if os.geteuid() == 0 else [])]

    def _locked(self):
        """apt's own locks are off (Debug::NoLocking: the state is private), so fetches of one
        doit run (-n 2) take this one: one refreshes the index at a time, and nobody reads it
        halfway through a refresh."""
        return file_lock(self.dir / "index")

    def _run(self, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(["apt-get", *self._options(), *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def update(self, force: bool = False) -> None:
        """Write the deb-src list and refresh the index when it is missing or a day old."""
        archives = self._archives if self._archives is not None else debian_archives()
        if not archives:
            raise FetchError("no Debian archive found in this machine's apt sources",
                             where="/etc/apt/sources.list.d",
                             fix="add Debian's archive to apt, or use upstream/mirrors/distfiles")
        stamp = self.dir / "lists" / ".updated"
        seen = _mtime(stamp)
        with self._locked():
            for sub in ("lists/partial", "cache/archives/partial", "sources.list.d"):
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
            sources = self.dir / "sources.list.d" / "deb-src.sources"
            text = deb_src_stanzas(archives, self.suites)
            changed = not sources.exists() or sources.read_text() != text
            if changed:
                sources.write_text(text)
            (self.dir / "sources.list").write_text("")
            # under the lock: a refresh another fetch made while this one waited is enough,
            # even when this one was asked to refresh
            now = _mtime(stamp)
            fresh = now is not None and (now != seen or (time.time() - now < REFRESH_SECONDS and not force))
            if self._updated or (fresh and not changed):
                return
            say(f"  apt: updating Debian source index ({' '.join(self.suites)})")
            r = self._run(["update"])
            if r.returncode != 0:
                raise FetchError("apt-get update for Debian's source index failed:\n" + _tail(r.stderr),
                                 fix="check the network to Debian's archive, or fetch from elsewhere")
            stamp.touch()
            self._updated = True

    def versions(self, package: str) -> list[str]:
        """All versions of a source package the index lists, newest first."""
        with self._locked():
            r = subprocess.run(["apt-cache", *self._options(), "showsrc", "--only-source", package],
                               capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        found = re.findall(r"^Version: (\S+)$", r.stdout, re.M)
        return newest_first(found)

    def file_uris(self, package: str, version: str) -> dict[str, SourceFile]:
        """{file name: (url, sha256, size)} of one source package version, from the signed index."""
        with self._locked():
            r = self._run(["source", "--print-uris", "--only-source", f"{package}={version}"], timeout=120)
        files = {}
        for m in re.finditer(r"^'([^']+)' (\S+) (\d+) (?:SHA256:)?([0-9a-f]{64})", r.stdout, re.M):
            files[m.group(2)] = SourceFile(m.group(1), m.group(4), int(m.group(3)))
        return files

    def candidates(self, package: str, upstream_version: str) -> list[str]:
        """Versions of `package` (any revision) whose upstream part is `upstream_version`."""
        return [v for v in self.versions(package) if upstream_part(v) == upstream_version]


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def upstream_part(debian_version: str) -> str:
    """`2:6.3.0+dfsg-5` -> `6.3.0+dfsg`; `3.1-20250104-1` -> `3.1-20250104`."""
    v = debian_version.split(":", 1)[-1]
    return v.rsplit("-", 1)[0] if "-" in v else v


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as Debian version `a` is older than, the same as or newer than `b`, in
    dpkg's order (Debian Policy 5.6.12): epoch, then upstream version, then revision."""
    for x, y in zip(_split_version(a), _split_version(b)):
        if isinstance(x, int):
            order = (x > y) - (x < y)
        else:
            order = _compare_part(x, y)
        if order:
            return order
    return 0


def newest_first(versions: list[str]) -> list[str]:
    """The distinct versions, newest first in dpkg's order."""
    unique = list(dict.fromkeys(versions))
    return sorted(unique, key=functools.cmp_to_key(compare_versions), reverse=True)


def _split_version(v: str) -> tuple[int, str, str]:
    """(epoch, upstream, revision); no revision compares like revision "0", as in dpkg."""
    epoch, _, rest = v.partition(":") if ":" in v else ("0", "", v)
    upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
    return int(epoch) if epoch.isdigit() else 0, upstream, revision


def _compare_part(a: str, b: str) -> int:
    """Alternate runs of non-digits (compared by _weight, char by char) and digits (compared
    as numbers, an empty run being 0), from the left."""
    runs_a = re.findall(r"([^0-9]*)([0-9]*)", a)
    runs_b = re.findall(r"([^0-9]*)([0-9]*)", b)
    for k in range(max(len(runs_a), len(runs_b))):
        text_a, digits_a = runs_a[k] if k < len(runs_a) else ("", "")
        text_b, digits_b = runs_b[k] if k < len(runs_b) else ("", "")
        order = _compare_text(text_a, text_b)
        if order:
            return order
        num_a, num_b = int(digits_a or 0), int(digits_b or 0)
        if num_a != num_b:
            return -1 if num_a < num_b else 1
    return 0


def _compare_text(a: str, b: str) -> int:
    for k in range(max(len(a), len(b))):
        wa = _weight(a[k]) if k < len(a) else 0   # the end of a run sorts after `~` only
        wb = _weight(b[k]) if k < len(b) else 0
        if wa != wb:
            return -1 if wa < wb else 1
    return 0


def _weight(c: str) -> int:
    """`~` before the end of a run, the end before letters, letters before anything else."""
    if c == "~":
        return -1
    if c.isascii() and c.isalpha():
        return ord(c)
    return ord(c) + 256


def _tail(text: str, lines: int = 8) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])
