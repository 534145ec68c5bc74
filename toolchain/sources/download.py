"""Download one URL to a file whose sha256 is known: atomically, resumably, and bounded.

The bytes go to `<dest>.<hash of the URL>.part` (kept between runs, so a cut download resumes
with an HTTP Range request from the same URL, never from another one), are hashed, and only a
file with the expected sha256 is renamed to `dest`. A mismatch deletes the partial file and
says expected / got / which URL.

Every server answer is treated as hostile: redirects are followed here, hop by hop, to
http(s) URLs only; the body may not grow past the expected size; an attempt has a deadline,
a low-speed limit (curl's --speed-limit/--speed-time) and a per-read timeout; the raw bytes
are saved (never decoded), and every failure is a DownloadError for this location.

Requests that fail (no connection, HTTP 429/500/502/503/504) are retried by urllib3's Retry on
the session's adapter (`retrying_session`), with backoff and a capped Retry-After; a
connection lost in the middle of the body is resumed here, with a Range request.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import re
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests
import urllib3
import urllib3.connection
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from tqdm import tqdm
from urllib3.exceptions import InvalidHeader, MaxRetryError, NameResolutionError, ReadTimeoutError
from urllib3.util.retry import Retry

from ..errors import FetchError
from .urls import url_problem
from ..say import say

CHUNK = 1 << 16
HTML_MAGIC = (b"<!doctype html", b"<html", b"<?xml", b"<head")
REDIRECTS = (301, 302, 303, 307, 308)
RETRY_STATUSES = (429, 500, 502, 503, 504)
GiB = 1 << 30
NEXT = "the next location is tried"


class DownloadError(FetchError):
    """This URL did not give the file; the next location may."""


@dataclass(frozen=True)
class Limits:
    """Bounds of one download attempt (tests pass tiny values)."""

    low_speed: int = 1024           # bytes per second (0: no limit), on average over ...
    low_speed_time: float = 60.0    # ... this many seconds, or the attempt is abandoned
    min_deadline: float = 600.0     # every attempt may take this long, and a big file ...
    deadline_rate: int = 10 * 1024  # ... as long as it takes at this many bytes per second
    max_size: int = 2 * GiB         # when neither the recipe, the index nor the server gives a size
    max_redirects: int = 10
    max_wait: float = 60.0          # the longest wait before a retry, whatever Retry-After says

    def deadline(self, nbytes: int) -> float:
        return max(self.min_deadline, nbytes / self.deadline_rate)


@contextmanager
def file_lock(path: Path):
    """An exclusive lock for `path` (in .locks/ beside it): two runs never write it at once."""
    lock_path = path.parent / ".locks" / (path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock_path, "a")
    except OSError as e:
        if e.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise
        yield  # a read-only folder (e.g. distfiles mounted read-only): we cannot write it either
        return
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def sha256_stream(f) -> str:
    """sha256 of what is left to read in an open binary file."""
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    with open(path, "rb") as f:
        return sha256_stream(f)


def verify(path: Path, expected: str, origin: str, *, ours: bool = False) -> None:
    """Raise unless the sha256 of `path` is `expected`.

    A bad file this tool wrote itself (`ours`: a .part or temporary file) is deleted. Any other
    file, e.g. one in the distfiles folder, may be the user's only copy: it is moved aside to
    `<name>.rejected`, never deleted, so that a good copy can take its name.
    """
    got = sha256_file(path)
    if got == expected:
        return
    what = f"sha256 mismatch for {path.name} from {origin}\n  expected: {expected}\n  got:      {got}"
    if ours:
        path.unlink(missing_ok=True)
        fix = "the file was deleted; another location is tried"
    else:
        aside = _move_aside(path)
        what += f"\n  moved aside to {aside.name} (not deleted: it may be yours)"
        fix = f"a good copy is fetched under its name; delete {aside.name} once you do not need it"
    raise DownloadError(what, fix=fix + ". If every location gives the same 'got', "
                                        "the recipe's hash may be wrong")


def _move_aside(path: Path) -> Path:
    """Rename `path` to a free `<name>.rejected[.N]` beside it."""
    aside, n = path.with_name(path.name + ".rejected"), 1
    while aside.exists():
        n += 1
        aside = path.with_name(f"{path.name}.rejected.{n}")
    os.replace(path, aside)
    return aside


def part_path(dest: Path, url: str) -> Path:
    """Where the bytes of `dest` from `url` collect: one partial file per URL."""
    tag = hashlib.sha256(url.encode()).hexdigest()[:12]
    return dest.with_name(f"{dest.name}.{tag}.part")


def _remove_parts(dest: Path) -> None:
    """Drop every partial file of `dest` (from any URL, or the old `<name>.part`)."""
    own = re.compile(re.escape(dest.name) + r"(\.[0-9a-f]{12})?\.part")
    for p in dest.parent.iterdir():
        if own.fullmatch(p.name):
            p.unlink(missing_ok=True)


def _progress(name: str, total: int | None, initial: int):
    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                desc=name, leave=True, file=sys.stderr, mininterval=0.2 if tty else 5.0,
                dynamic_ncols=tty, ascii=not tty)


def download(url: str, dest: Path, sha256: str, *, timeout: float = 30.0, retries: int = 4,
             backoff: float = 1.0, session: requests.Session | None = None, size: int = 0,
             limits: Limits | None = None) -> Path:
    """Fetch `url` into `dest` if it has `sha256`; raise DownloadError otherwise.

    `size`: the file's size when known (recipe, Debian's index), 0 when not; `timeout`: the
    longest wait for any single read; `retries`: how often a failed request is asked again and
    a cut body resumed. A `session` of your own does the retries only if it comes from
    retrying_session(); without one, download() makes such a session.
    """
    dest = Path(dest)
    problem = url_problem(url)
    if problem:
        raise DownloadError(f"{url}: the URL {problem}", fix=NEXT)
    limits = limits or Limits()
    job = _Job(url, dest, sha256, size, timeout, limits, session or retrying_session(retries, backoff, limits))
    with file_lock(dest):
        if dest.exists() and _already_there(dest, sha256):
            return dest
        resumed = job.fetch(retries)
        try:
            job.check()
        except DownloadError as e:
            if not resumed:
                raise
            # the earlier bytes may be what is wrong: give this location one clean try
            say(f"  {dest.name}: resumed download is bad ({e.what.splitlines()[0]}); "
                "starting over", err=True)
            job.fetch(retries)
            job.check()
        os.replace(job.part, dest)
        _remove_parts(dest)
    return dest


def _already_there(dest: Path, sha256: str) -> bool:
    """Another run finished `dest` while we waited for the lock (a bad file is moved aside)."""
    try:
        verify(dest, sha256, f"distfiles {dest}")
        return True
    except DownloadError as e:
        say("  " + e.what.replace("\n", "\n  "), err=True)
        return False


class _Cut(Exception):
    """The connection ended in the middle of the body: resume from what we have."""


class _Restart(Exception):
    """The partial file cannot be continued; it was deleted, so ask again from zero."""


@dataclass
class _Answer:
    """What a response promises: where its bytes go in the file, and how many there are."""

    offset: int         # bytes of the file before the body's first byte
    total: int          # the whole file's size, or the most we accept when `exact` is False
    exact: bool         # total is a size the server or the recipe stated, not just a limit


class _Job:
    """One URL into one file: attempts with retries, each bounded in size and time."""

    def __init__(self, url, dest, sha256, size, timeout, limits, session):
        self.url, self.dest, self.sha256, self.size = url, dest, sha256, size
        self.timeout, self.limits, self.session = timeout, limits, session
        self.part = part_path(dest, url)

    def fetch(self, resumes: int) -> bool:
        """Fill the partial file; True when it continued bytes from before (a resume).

        A cut in the body is resumed at most `resumes` times; a request that fails is retried
        by the session's adapter, not here."""
        cuts, resumed = 0, False
        while True:
            try:
                resumed = self._attempt() or resumed
                return resumed
            except _Restart:
                continue  # the part is gone now, so this cannot repeat forever
            except _Cut as e:
                cuts += 1
                if cuts > resumes:
                    raise DownloadError(f"{self.url}: {e} (gave up after {resumes} resumes)",
                                        fix="check the network or the mirror; the partial file is kept "
                                            "and resumes next time") from None
                say(f"  {self.dest.name}: {e}; resuming ({cuts}/{resumes})", err=True)
            except OSError as e:  # our side: the distfiles folder
                raise DownloadError(f"cannot write {self.part}: {e.strerror or e}",
                                    fix="check free space and permissions of the distfiles folder") from None

    def check(self) -> None:
        """Verify the finished part; name an HTML page as such, it is the usual impostor."""
        with open(self.part, "rb") as f:
            head = f.read(512)
        try:
            verify(self.part, self.sha256, self.url, ours=True)
        except DownloadError:
            if head.lstrip()[:14].lower().startswith(HTML_MAGIC):
                raise DownloadError(f"{self.url} sent an HTML page, not the file",
                                    fix="check that the mirror really has this file") from None
            raise

    # -- one attempt ---------------------------------------------------------------------

    def _attempt(self) -> bool:
        have = self._have()
        if self.size and have == self.size:
            return True  # complete from an earlier run; check() decides
        clock = _Clock(self.limits)
        headers = {"Accept-Encoding": "identity"}  # the pinned bytes, not a decoded copy
        if have:
            headers["Range"] = f"bytes={have}-"
        # the clock runs from the request on: a server dripping its headers is cut off too
        with _Watchdog(clock, _waiting_socket(threading.get_ident())) as dog:
            try:
                resp = _open(self.session, self.url, headers, self.timeout, self.limits)
            except DownloadError:
                _timed_out(dog.fired, self.url)
                raise
        _timed_out(dog.fired, self.url)
        with resp:
            _check_status(resp, self.url, self.part, have)
            answer = self._answer(resp, have)
            clock.deadline = self.limits.deadline(answer.total - answer.offset)
            self._receive(resp, answer, clock)
        return answer.offset > 0

    def _have(self) -> int:
        """Bytes of the part from earlier; a part larger than the file can be is deleted."""
        have = self.part.stat().st_size if self.part.exists() else 0
        if have > (self.size or self.limits.max_size):
            self.part.unlink()
            have = 0
        return have

    def _answer(self, resp: requests.Response, have: int) -> _Answer:
        """Check the sizes the response states against what we know, before any body byte."""
        length = _number(resp.headers.get("Content-Length"))
        offset, whole = 0, None
        if resp.status_code == 206:
            offset, whole = _content_range(resp.headers.get("Content-Range", ""))
            if offset != have:
                self.part.unlink(missing_ok=True)
                if have == 0:
                    raise DownloadError(f"{self.url}: a partial answer (206) from byte {offset} to a request "
                                        "for the whole file", fix=NEXT)
                say(f"  {self.dest.name}: server resumed at byte {offset}, we have {have}; "
                    "starting over", err=True)
                raise _Restart()
        elif have and resp.status_code == 200:
            self.part.unlink()  # the server ignored the Range header: its body is the whole file
        stated = {whole} if whole is not None else set()
        if length is not None:
            stated.add(offset + length)
        if len(stated) > 1:
            self.part.unlink(missing_ok=True)
            raise DownloadError(f"{self.url}: Content-Range and Content-Length disagree on the size "
                                f"({' vs '.join(map(str, sorted(stated)))})", fix=NEXT)
        if self.size:
            if stated - {self.size}:
                self.part.unlink(missing_ok=True)
                raise DownloadError(f"{self.url}: the server announces {stated.pop()} bytes, but the file "
                                    f"has {self.size}", fix=NEXT)
            return _Answer(offset, self.size, True)
        if stated:
            total = stated.pop()
            if total > self.limits.max_size:
                self.part.unlink(missing_ok=True)
                raise DownloadError(f"{self.url}: the server announces {total} bytes, more than the "
                                    f"{self.limits.max_size} accepted for a file of unknown size", fix=NEXT)
            return _Answer(offset, total, True)
        return _Answer(offset, self.limits.max_size, False)

    def _receive(self, resp: requests.Response, answer: _Answer, clock: _Clock) -> None:
        """Append the body to the part, never beyond answer.total bytes and never too slowly."""
        received = answer.offset
        sock = getattr(getattr(resp.raw, "connection", None), "sock", None)
        with open(self.part, "ab") as out, _Watchdog(clock, lambda: sock) as dog, \
                _progress(self.dest.name, answer.total if answer.exact else None, received) as bar:
            while True:
                _timed_out(clock.verdict(), self.url)
                chunk = _read(resp, self.url, received, dog, self.timeout)
                if not chunk:
                    break
                if received + len(chunk) > answer.total:
                    out.close()
                    self.part.unlink(missing_ok=True)
                    why = "the expected size" if answer.exact else "the limit for a file of unknown size"
                    raise DownloadError(f"{self.url}: the body grew past {answer.total} bytes ({why}); "
                                        "the partial file was deleted", fix=NEXT)
                out.write(chunk)
                received += len(chunk)
                clock.count(len(chunk))
                bar.update(len(chunk))
            _timed_out(dog.fired, self.url)  # a cut socket can look like the end of the body
        if answer.exact and received < answer.total:
            raise _Cut(f"connection closed after {received} of {answer.total} bytes")


def _number(text: str | None) -> int | None:
    return int(text) if text and text.strip().isdigit() else None


def _content_range(text: str) -> tuple[int, int | None]:
    """(first byte, whole size or None) of `bytes START-END/SIZE`; (-1, None) when unreadable."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", text)
    if not m or int(m.group(2)) < int(m.group(1)):
        return -1, None
    return int(m.group(1)), (int(m.group(3)) if m.group(3) != "*" else None)


def _timed_out(reason: str, url: str) -> None:
    if reason:
        raise DownloadError(f"{url}: timed out: {reason}", fix="the server is too slow from here; " + NEXT)


# -- talking to the server ----------------------------------------------------------------

def _open(session: requests.Session, url: str, headers: dict, timeout: float,
          limits: Limits) -> requests.Response:
    """GET `url`, following redirects ourselves so that every hop is checked."""
    seen = [url]
    while True:
        resp = _get(session, url, headers, timeout)
        if resp.status_code not in REDIRECTS:
            return resp
        resp.close()
        target = resp.headers.get("Location", "")
        first = seen[0]
        if not target.strip():
            raise DownloadError(f"{first}: redirect (HTTP {resp.status_code}) without a Location", fix=NEXT)
        try:
            url = urljoin(url, target.strip())
        except ValueError:
            url = target
        problem = url_problem(url)
        if problem:
            raise DownloadError(f"{first}: redirected to {target[:200]!r}, which {problem}", fix=NEXT)
        if url in seen:
            raise DownloadError(f"{first}: redirect loop at {url}", fix=NEXT)
        seen.append(url)
        if len(seen) > limits.max_redirects + 1:
            raise DownloadError(f"{first}: more than {limits.max_redirects} redirects", fix=NEXT)


def _get(session: requests.Session, url: str, headers: dict, timeout: float) -> requests.Response:
    try:
        return _send(session, url, headers, timeout)
    except requests.Timeout:
        raise DownloadError(f"{url}: timed out: no answer within {timeout:g}s",
                            fix="the server is too slow from here; " + NEXT) from None
    except requests.exceptions.SSLError as e:  # a certificate does not become valid by retrying
        raise DownloadError(f"{url}: TLS failed: {_first_line(e)}",
                            fix="check the machine's CA certificates and clock, "
                                "or use another mirror") from None
    except requests.ConnectionError as e:
        reason = getattr(e.args[0], "reason", None) if e.args else None
        if isinstance(reason, NameResolutionError):  # not transient: no such host from here
            raise DownloadError(f"{url}: cannot resolve the host name",
                                fix="check the URL, DNS, or network access") from None
        attempts = _planned_attempts(session, url)
        raise DownloadError(f"{url}: {_failure(reason)} (gave up after {attempts} attempts)",
                            fix="check the network or the mirror; " + NEXT) from None
    except (requests.RequestException, urllib3.exceptions.HTTPError, ValueError) as e:
        # e.g. an invalid header in the answer; urllib3 raises some URL errors as ValueError
        raise DownloadError(f"{url}: {type(e).__name__}: {_first_line(e)}", fix=NEXT) from None


def _send(session: requests.Session, url: str, headers: dict, timeout: float) -> requests.Response:
    """One request, no redirect handling at all: even with allow_redirects=False, Session.send
    reads a redirect's whole body into memory and parses its Location."""
    request = session.prepare_request(requests.Request("GET", url, headers=headers))
    env = session.merge_environment_settings(request.url, {}, True, None, None)  # proxies, CA bundle
    return session.get_adapter(request.url).send(request, stream=True, timeout=timeout, verify=env["verify"],
                                                 cert=env["cert"], proxies=env["proxies"])


def _check_status(resp: requests.Response, url: str, part: Path, have: int) -> None:
    code = resp.status_code
    if code == 416 and have:
        part.unlink()  # our partial file is not a prefix of what the server has
        say(f"  {url}: server refused to resume (416); starting over", err=True)
        raise _Restart()
    if code in RETRY_STATUSES:
        raise DownloadError(f"{url}: HTTP {code} {resp.reason} (gave up after {_attempts(resp)} attempts)",
                            fix="the server is down or overloaded; the partial file is kept and resumes "
                                "next time; " + NEXT)
    if code >= 400:
        raise DownloadError(f"{url}: HTTP {code} {resp.reason}",
                            fix="the file is not at this location; " + NEXT)
    if code not in (200, 206):
        raise DownloadError(f"{url}: unexpected answer HTTP {code} {resp.reason}", fix=NEXT)
    ctype = resp.headers.get("Content-Type", "")
    if "text/html" in ctype:
        raise DownloadError(f"{url} answered with an HTML page (Content-Type: {ctype}), "
                            "not the file: probably an error or login page",
                            fix="check that the mirror really has this file")


def _read(resp: requests.Response, url: str, received: int, dog: _Watchdog, timeout: float) -> bytes:
    """The next bytes as they arrive (read1: a drip returns each few bytes, so the clock is
    checked between them), raw: a Content-Encoding is never undone."""
    try:
        return resp.raw.read1(CHUNK, decode_content=False)
    except urllib3.exceptions.ReadTimeoutError:
        raise DownloadError(f"{url}: timed out: no data for {timeout:g}s after {received} bytes",
                            fix="the server is too slow from here; " + NEXT) from None
    except (urllib3.exceptions.HTTPError, OSError) as e:
        _timed_out(dog.fired, url)
        if isinstance(e, urllib3.exceptions.ProtocolError):
            raise _Cut(f"connection lost after {received} bytes") from None
        raise DownloadError(f"{url}: {type(e).__name__}: {_first_line(e)}", fix=NEXT) from None


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [""])[0][:300]


# -- retries ----------------------------------------------------------------------------------

def retrying_session(retries: int, backoff: float, limits: Limits) -> requests.Session:
    """A session whose adapter retries failed requests `retries` times (_send goes through the
    adapter, so the retries happen inside its send)."""
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=_Retry(
        total=retries, backoff_factor=backoff, backoff_max=limits.max_wait, retry_after_max=limits.max_wait,
        status_forcelist=RETRY_STATUSES, allowed_methods=frozenset({"GET"}), respect_retry_after_header=True,
        redirect=0, raise_on_redirect=False,  # _open follows redirects itself, checking each hop
        raise_on_status=False))               # the last answer reaches _check_status, which names it
    adapter.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class _Retry(Retry):
    """urllib3's Retry, for servers that may be hostile or simply not there."""

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        if isinstance(error, ReadTimeoutError):  # as requests' own adapter does: it becomes a Timeout
            raise error
        dog = _WATCHED.get(threading.get_ident())
        if dog is not None and dog.fired:        # out of time: no more attempts
            raise MaxRetryError(_pool, url, error) from error
        if error is not None and not _transient(error):
            raise MaxRetryError(_pool, url, error) from error
        if response is not None:
            response.close()  # urllib3 would read an error body to its end, and it may never end
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        new._announce(response, _full_url(_pool, url or ""))
        return new

    def parse_retry_after(self, retry_after: str) -> float:
        try:
            return super().parse_retry_after(retry_after)
        except InvalidHeader:
            return 0  # unreadable: the usual backoff instead

    def _announce(self, response, url: str) -> None:
        """Say why and how long we wait (as Retry.sleep will decide): a Retry-After may be long."""
        honoured = response is not None and self.respect_retry_after_header
        wait = (self.get_retry_after(response) if honoured else None) or self.get_backoff_time()
        last, done = self.history[-1], len(self.history)
        why = f"HTTP {last.status}" if last.status else _failure(last.error)
        say(f"  {url}: {why}; retry {done}/{done + (self.total or 0)} in {wait:g}s", err=True)


def _transient(error: Exception) -> bool:
    """A failure that asking again may cure (a refused or dropped connection); not a missing
    host, a bad certificate, or a timeout, which would cost the whole timeout again."""
    if isinstance(error, urllib3.exceptions.ProxyError):
        error = error.original_error
    if isinstance(error, NameResolutionError):
        return False
    return isinstance(error, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProtocolError))


def _failure(error: Exception | None) -> str:
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return "cannot connect"
    if isinstance(error, urllib3.exceptions.ProtocolError):
        return "connection lost before the answer"
    return type(error).__name__


def _full_url(pool, path: str) -> str:
    """The URL a connection pool was asked for (urllib3 passes only the path, unless proxied)."""
    if pool is None or "://" in path:
        return path
    host = f"[{pool.host}]" if ":" in pool.host else pool.host
    return f"{pool.scheme}://{host}:{pool.port}{path}"


def _attempts(resp: requests.Response) -> int:
    """How many requests the adapter made for this answer."""
    retries = getattr(resp.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


def _planned_attempts(session: requests.Session, url: str) -> int:
    """How many requests the session's adapter makes before it gives up on a connection."""
    retries = getattr(session.get_adapter(url), "max_retries", None)
    return int(retries.total or 0) + 1 if isinstance(retries, Retry) else 1


# -- time limits ----------------------------------------------------------------------------

class _Clock:
    """The deadline and the low-speed limit of one attempt; read from two threads."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.start = self.window = time.monotonic()
        self.deadline = limits.deadline(limits.max_size)  # until the answer says how big
        self.in_window = 0
        self.lock = threading.Lock()

    def count(self, n: int) -> None:
        with self.lock:
            self.in_window += n

    def verdict(self) -> str:
        """Why this attempt must stop now, or ""."""
        now = time.monotonic()
        with self.lock:
            if now - self.start > self.deadline:
                return f"not done after {self.deadline:g}s"
            span = self.limits.low_speed_time
            if now - self.window < span:
                return ""
            if self.in_window < self.limits.low_speed * span:
                return (f"{self.in_window} bytes in {now - self.window:.1f}s, slower than "
                        f"{self.limits.low_speed} bytes/s")
            self.window, self.in_window = now, 0
            return ""


class _Watchdog:
    """Shuts the connection when the clock runs out while a read is blocked: a server can drip
    its headers or chunk headers a byte at a time, which no check between reads would see.
    `sock()` is the socket read now (while headers are awaited: each retry's new one)."""

    def __init__(self, clock: _Clock, sock):
        self.sock = sock
        self.clock = clock
        self.fired = ""
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.interval = max(0.01, min(1.0, clock.limits.low_speed_time / 4))
        self.thread = threading.Thread(target=self._run, daemon=True, name="download-watchdog")

    def __enter__(self) -> _Watchdog:
        _WATCHED[threading.get_ident()] = self
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        with self.lock:  # after this the socket may go back to the pool: never shut it then
            self.done.set()
        _WATCHED.pop(threading.get_ident(), None)
        self.thread.join()

    def _run(self) -> None:
        while not self.done.wait(self.interval):
            reason = self.fired or self.clock.verdict()
            if not reason:
                continue
            with self.lock:   # once fired, every socket it waits on is shut (a retry's too)
                sock = None if self.done.is_set() else self.sock()
                self.fired = reason
                if sock is not None:
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass


# Which socket a thread's request is waiting on for its answer, and the watchdog of that
# thread: urllib3 opens connections inside the adapter, out of our reach otherwise.
_WAITING: dict[int, socket.socket] = {}
_WATCHED: dict[int, _Watchdog] = {}


def _waiting_socket(thread: int):
    return lambda: _WAITING.get(thread)


class _TrackedHTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self, *args, **kwargs):
        _WAITING[threading.get_ident()] = self.sock
        try:
            return super().getresponse(*args, **kwargs)
        finally:
            _WAITING.pop(threading.get_ident(), None)


class _TrackedHTTPSConnection(urllib3.connection.HTTPSConnection):
    getresponse = _TrackedHTTPConnection.getresponse


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _TrackedHTTPConnection


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TrackedHTTPSConnection
