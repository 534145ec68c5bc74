"""Where cached toolchains live: a folder, or an HTTP(S) server (GET/HEAD to read, PUT to
write: any static web server for readers, WebDAV for writers). One folder per key, holding
the files of one artifact (artifact.py). Every read is bounded in size and time; a file is
written under a temporary name and renamed, so no reader sees half of one."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests

from ..errors import ToolchainError
from ..sources.download import DownloadError, download
from ..sources.urls import url_problem

TIMEOUT = 30.0          # seconds for any one request to answer or a read to progress
SMALL = 1 << 20         # the most a small file (artifact.json, its signatures) may be


class CacheError(ToolchainError):
    """The cache could not be read or written; the build goes on without it."""


class Missing(CacheError):
    """The cache has no such file: a miss, not a failure."""


class Folder:
    def __init__(self, root: Path):
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def _path(self, key: str, name: str) -> Path:
        return self.root / key[:2] / key / name

    def read_small(self, key: str, name: str) -> bytes:
        path = self._path(key, name)
        try:
            with open(path, "rb") as f:
                data = f.read(SMALL + 1)
        except FileNotFoundError:
            raise Missing(f"no {name}", where=str(path)) from None
        except OSError as e:
            raise CacheError(f"cannot read: {e.strerror}", where=str(path)) from None
        if len(data) > SMALL:
            raise CacheError(f"is over {SMALL} bytes", where=str(path))
        return data

    def fetch(self, key: str, name: str, dest: Path, sha256: str, size: int) -> None:
        """Copy the file to dest if it has that size and sha256 (else CacheError)."""
        from ..sources.download import sha256_file
        path = self._path(key, name)
        try:
            if path.stat().st_size != size:
                raise CacheError(f"has {path.stat().st_size} bytes, its artifact.json says {size}", where=str(path))
            shutil.copyfile(path, dest)
        except FileNotFoundError:
            raise Missing(f"no {name}", where=str(path)) from None
        except OSError as e:
            raise CacheError(f"cannot read: {e.strerror}", where=str(path)) from None
        if sha256_file(dest) != sha256:
            dest.unlink()
            raise CacheError("does not have the sha256 its artifact.json says: damaged or changed",
                             where=str(path))

    def put(self, key: str, name: str, src: Path) -> None:
        path = self._path(key, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.")
        os.close(fd)
        try:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


class Http:
    def __init__(self, base: str):
        self.base = base.rstrip("/")

    def __str__(self) -> str:
        return self.base

    def _url(self, key: str, name: str) -> str:
        return f"{self.base}/{key}/{name}"

    def read_small(self, key: str, name: str) -> bytes:
        url = self._url(key, name)
        try:
            with requests.get(url, stream=True, timeout=TIMEOUT, allow_redirects=True) as r:
                if r.status_code == 404:
                    raise Missing(f"no {name} (404)", where=url)
                if r.status_code != 200:
                    raise CacheError(f"answered {r.status_code} {r.reason}", where=url)
                data = b""
                for chunk in r.iter_content(1 << 16):
                    data += chunk
                    if len(data) > SMALL:
                        raise CacheError(f"sends over {SMALL} bytes", where=url)
                return data
        except requests.RequestException as e:
            raise CacheError(f"cannot be read: {type(e).__name__}", where=url) from None

    def fetch(self, key: str, name: str, dest: Path, sha256: str, size: int) -> None:
        url = self._url(key, name)
        try:
            download(url, dest, sha256, size=size, retries=2)
        except DownloadError as e:
            raise CacheError(e.what.splitlines()[0], where=url) from None

    def put(self, key: str, name: str, src: Path) -> None:
        url = self._url(key, name)
        try:
            with open(src, "rb") as f:
                r = requests.put(url, data=f, timeout=TIMEOUT * 10,
                                 headers={"Content-Length": str(src.stat().st_size)})
        except requests.RequestException as e:
            raise CacheError(f"cannot be written: {type(e).__name__}", where=url) from None
        if r.status_code not in (200, 201, 204):
            raise CacheError(f"answered {r.status_code} {r.reason} to PUT", where=url,
                             fix="the server must accept PUT (e.g. nginx with dav_methods PUT)")


def backend(setting: str):
    """The backend a `cache=` value names: http(s)://... or a folder (a path or file://...)."""
    text = setting.strip()
    scheme = urlsplit(text).scheme
    if scheme in ("http", "https"):
        problem = url_problem(text, base=True)
        if problem:
            raise ToolchainError(f"cache={text!r}: the URL {problem}", where="setting cache",
                                 fix="write an http(s) base URL, e.g. cache=https://cache.example/toolchains")
        return Http(text)
    if scheme == "file":
        text = urlsplit(text).path
    elif scheme and len(scheme) > 1:
        raise ToolchainError(f"cache={text!r}: {scheme}:// is not a cache this tool can use", where="setting cache",
                             fix="write a folder, file://FOLDER or an http(s):// base URL")
    return Folder(Path(text).expanduser().absolute())
