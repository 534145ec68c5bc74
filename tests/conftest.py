"""Shared fixtures: a real HTTP server on 127.0.0.1 with scripted misbehaviour."""
from __future__ import annotations

import hashlib
import io
import shutil
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """Serves `routes[path]`: a list of behaviours used one per request (the last repeats).

    Behaviours: ("file", data) with Range support; ("status", code[, headers]) a short error
    answer, with extra headers (e.g. Retry-After) when given; ("html", text) as a 200 text/html
    page; ("disguised", text) an HTML page sent as application/octet-stream; ("cut", data, n)
    sends the headers of all of data but only n bytes, then drops the connection.

    Hostile ones: ("endless", "chunked" | "close"[, code]) a body that never ends (chunked, or
    without Content-Length until the connection closes), status 200 unless `code` is given;
    ("claim", data, n) announces Content-Length n but sends data; ("drip", data, n, seconds)
    sends n bytes of data per interval; ("stall", data, n) sends the headers of all of data and
    n bytes, then nothing; ("gzip", data) the raw bytes labelled Content-Encoding: gzip;
    ("redirect", location, code) (location None: no Location header); ("badrange", data, start)
    answers a Range request with a 206 whose Content-Range begins at `start` (and a plain
    request with the whole file); ("raw", bytes) writes bytes as the whole answer; ("rawdrip",
    head, body, n, seconds) writes head, then n bytes of body per interval. Slow handlers give
    up when the server closes.
    """

    def __init__(self):
        self.routes: dict[str, list[tuple]] = {}
        self.log: list[tuple[str, str | None]] = []
        self.request_headers: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()
        self.connections: set = set()
        self.put_status: int | None = None     # PUT answers this instead of storing the body
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # a client that stops reading cannot block a handler for long

            def setup(self):
                super().setup()
                server.connections.add(self.connection)

            def finish(self):
                server.connections.discard(self.connection)
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.log.append((self.path, self.headers.get("Range")))
                server.request_headers.append((self.path, dict(self.headers)))
                plan = server.routes.get(self.path)
                if not plan:
                    return self._send(404, b"not found", "text/plain")
                behaviour = plan.pop(0) if len(plan) > 1 else plan[0]
                kind = behaviour[0]
                try:
                    return self._behave(kind, behaviour)
                except OSError:  # the client hung up, as a client that detects abuse should
                    self.close_connection = True
                    return None

            def do_PUT(self):
                """A WebDAV-like write: the body becomes a ("file", data) route, unless
                `put_status` says to answer with that code instead."""
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(min(length, 64 << 20))
                server.log.append((self.path, "PUT"))
                if server.put_status:
                    return self._send(server.put_status, b"no", "text/plain")
                server.routes[self.path] = [("file", data)]
                return self._send(201, b"", "text/plain")

            def _behave(self, kind, behaviour):
                if kind == "status":
                    return self._send(behaviour[1], b"error", "text/plain", *behaviour[2:])
                if kind == "html":
                    return self._send(200, behaviour[1].encode(), "text/html; charset=utf-8")
                if kind == "disguised":
                    return self._send(200, behaviour[1].encode(), "application/octet-stream")
                if kind == "redirect":
                    self.send_response(behaviour[2] if len(behaviour) > 2 else 302)
                    if behaviour[1] is not None:
                        self.send_header("Location", behaviour[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                if kind == "raw":
                    self.wfile.write(behaviour[1])
                    self.close_connection = True
                    return None
                if kind == "rawdrip":
                    self.wfile.write(behaviour[1])
                    self._drip(behaviour[2], behaviour[3], behaviour[4])
                    return None
                if kind == "endless":
                    return self._endless(*behaviour[1:])
                data = behaviour[1]
                if kind in ("claim", "drip", "stall", "gzip"):
                    return self._misbehave(kind, behaviour)
                if kind == "badrange" and self.headers.get("Range"):
                    start = behaviour[2]
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    self.send_header("Content-Length", str(len(data) - start))
                    self.end_headers()
                    self.wfile.write(data[start:])
                    return None
                if kind == "cut":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.wfile.write(data[:behaviour[2]])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    start = int(rng[6:].split("-")[0])
                    if start >= len(data):
                        return self._send(416, b"", "text/plain")
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                    body = data[start:]
                else:
                    self.send_response(200)
                    body = data
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.wfile.write(body)
                return None

            def _misbehave(self, kind, behaviour):
                data = behaviour[1]
                self.send_response(200)
                length = behaviour[2] if kind == "claim" else len(data)
                self.send_header("Content-Length", str(length))
                self.send_header("Content-Type", "application/octet-stream")
                if kind == "gzip":
                    self.send_header("Content-Encoding", "gzip")
                self.end_headers()
                if kind in ("claim", "gzip"):
                    self.wfile.write(data)
                    self.close_connection = True
                    return None
                if kind == "stall":
                    self.wfile.write(data[:behaviour[2]])
                    self.wfile.flush()
                    server.stopping.wait(60)
                    self.close_connection = True
                    return None
                self._drip(data, behaviour[2], behaviour[3])
                return None

            def _drip(self, data, step, interval):
                for i in range(0, len(data), step):
                    if server.stopping.wait(interval):
                        break
                    self.wfile.write(data[i:i + step])
                    self.wfile.flush()
                self.close_connection = True

            def _endless(self, framing, code=200):
                self.send_response(code)
                self.send_header("Content-Type", "application/octet-stream")
                if framing == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Connection", "close")
                self.end_headers()
                block = b"\0" * 65536
                frame = b"%x\r\n%s\r\n" % (len(block), block) if framing == "chunked" else block
                while not server.stopping.is_set():
                    self.wfile.write(frame)
                self.close_connection = True
                return None

            def _send(self, code, body, ctype, headers=None):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", ctype)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        # a short poll interval: shutdown() at teardown waits for one
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def requests_for(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.log if p == path]

    def headers_for(self, path: str) -> list[dict[str, str]]:
        return [h for p, h in self.request_headers if p == path]

    def close(self):
        self.stopping.set()  # dripping and endless handlers stop; then unblock any stuck one
        for conn in self.connections.copy():  # copy(): atomic while handlers come and go
            try:
                conn.shutdown(2)
            except OSError:
                pass
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def aarch64_build(tmp_path: Path, **given: str):
    """The aarch64 toolchain's Build with these settings, out below tmp_path (and ccache's
    folder there, should ccache=1 be given)."""
    from toolchain import settings
    from toolchain.build import context
    from toolchain.sources import recipes
    r = recipes.load()
    s = settings.load({"out": str(tmp_path / "out"), **given}, env={"CCACHE_DIR": str(tmp_path / "ccache")})
    return context.Build(s, r.targets["aarch64"], r.select({}))


def make_tar(entries: dict[str, bytes | None], *, top: str = "pkg-1.0", mode: str = "w:gz") -> bytes:
    """A tarball with `top/` and the given files (None: a directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        d = tarfile.TarInfo(top)
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for name, data in entries.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def payload() -> bytes:
    """A file big enough to be sent in several chunks."""
    return bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A copy of the project's recipes (with patches/ beside them), to break on purpose."""
    repo = Path(__file__).resolve().parent.parent
    shutil.copytree(repo / "recipes", tmp_path / "recipes")
    shutil.copytree(repo / "patches", tmp_path / "patches")
    return tmp_path / "recipes"


@pytest.fixture
def registry(tmp_path):
    """A real OCI registry (Debian's docker-registry: the CNCF distribution registry) on a free
    port of 127.0.0.1, storing into tmp_path; stopped after the test."""
    import os
    import socket
    import subprocess
    import time
    import requests
    program = shutil.which("docker-registry")
    if not program:
        if os.environ.get("CI"):
            pytest.fail("docker-registry is not installed (apt-get install docker-registry)")
        pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    storage = tmp_path / "registry"
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {storage}\n"
                      f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([program, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail("the registry did not start")
        yield f"127.0.0.1:{port}", storage, proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)
