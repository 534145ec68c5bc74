"""Download one URL to a file whose sha256 is known, atomically and resumably.

The bytes go to `<dest>.part` (kept between runs, so a cut download resumes with an HTTP
Range request), are hashed on the way, and only a file with the expected sha256 is renamed
to `dest`. A mismatch deletes the partial file and says expected / got / which URL.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests
from tqdm import tqdm
from urllib3.exceptions import NameResolutionError

from .errors import FetchError

CHUNK = 1 << 16
HTML_MAGIC = (b"<!doctype html", b"<html", b"<?xml", b"<head")


class DownloadError(FetchError):
    """This URL did not give the file; the next location may."""


@contextmanager
def file_lock(path: Path):
    """An exclusive lock for `path` (in .locks/ beside it): two runs never write it at once."""
    lock_path = path.parent / ".locks" / (path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, expected: str, origin: str) -> None:
    """Raise (after deleting `path`) unless its sha256 is `expected`."""
    got = sha256_file(path)
    if got != expected:
        path.unlink(missing_ok=True)
        raise DownloadError(f"sha256 mismatch for {path.name} from {origin}\n"
                            f"  expected: {expected}\n  got:      {got}",
                            fix="the file was deleted; another location is tried. If every location "
                                "gives the same 'got', the recipe's hash may be wrong")


def _progress(name: str, total: int | None, initial: int):
    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name, leave=True, file=sys.stderr, mininterval=0.2 if tty else 5.0,
                dynamic_ncols=tty, ascii=not tty)


def download(url: str, dest: Path, sha256: str, *, timeout: float = 30.0, retries: int = 4,
             backoff: float = 1.0, session: requests.Session | None = None) -> Path:
    """Fetch `url` into `dest` if it has `sha256`; raise DownloadError otherwise."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    session = session or requests.Session()
    with file_lock(dest):
        if dest.exists():  # another run finished it while we waited for the lock
            verify(dest, sha256, str(dest))
            return dest
        attempt = 0
        while True:
            try:
                _transfer(session, url, part, timeout)
                break
            except _Retryable as e:
                attempt += 1
                if attempt > retries:
                    raise DownloadError(f"{url}: {e} (gave up after {retries} retries)",
                                        fix="check the network or the mirror; the partial file is kept "
                                            "and resumes next time") from None
                wait = backoff * (2 ** (attempt - 1))
                print(f"  {dest.name}: {e}; retry {attempt}/{retries} in {wait:.0f}s", file=sys.stderr)
                time.sleep(wait)
        verify(part, sha256, url)
        os.replace(part, dest)
    return dest


class _Retryable(Exception):
    pass


def _transfer(session: requests.Session, url: str, part: Path, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        resp = session.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True)
    except (requests.ConnectionError, requests.Timeout) as e:
        reason = getattr(e.args[0], "reason", None) if e.args else None
        if isinstance(reason, NameResolutionError):  # not transient: no such host from here
            raise DownloadError(f"{url}: cannot resolve the host name",
                                fix="check the URL, DNS, or network access") from None
        raise _Retryable(f"cannot connect: {type(e).__name__}") from None
    with resp:
        if resp.status_code == 416 and have:
            part.unlink()  # our partial file is not a prefix of what the server has
            raise _Retryable("server refused to resume (416); starting over")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _Retryable(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise DownloadError(f"{url}: HTTP {resp.status_code} {resp.reason}",
                                fix="the file is not at this location; the next one is tried")
        ctype = resp.headers.get("Content-Type", "")
        if "text/html" in ctype:
            raise DownloadError(f"{url} answered with an HTML page (Content-Type: {ctype}), "
                                "not the file: probably an error or login page",
                                fix="check that the mirror really has this file")
        mode = "ab"
        if have and resp.status_code != 206:
            have, mode = 0, "wb"  # server ignored the Range header: start over
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        received = have
        with open(part, mode) as out, _progress(part.name[:-5], total, have) as bar:
            try:
                for chunk in resp.iter_content(CHUNK):
                    if received == 0 and chunk.lstrip()[:14].lower().startswith(HTML_MAGIC):
                        part.unlink(missing_ok=True)
                        raise DownloadError(f"{url} sent an HTML page, not the file",
                                            fix="check that the mirror really has this file")
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as e:
                raise _Retryable(f"connection lost after {received} bytes ({type(e).__name__})") from None
        if total is not None and received < total:
            raise _Retryable(f"connection closed after {received} of {total} bytes")
