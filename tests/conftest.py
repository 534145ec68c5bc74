"""Shared fixtures: a real HTTP server on 127.0.0.1 with scripted misbehaviour."""
from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Server:
    """Serves `routes[path]`: a list of behaviours used one per request (the last repeats).

    Behaviours: ("file", data) with Range support; ("status", code); ("html", text) as a
    200 text/html page; ("disguised", text) an HTML page sent as application/octet-stream;
    ("cut", data, n) sends the headers of all of data but only n bytes, then drops the
    connection.
    """

    def __init__(self):
        self.routes: dict[str, list[tuple]] = {}
        self.log: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                server.log.append((self.path, self.headers.get("Range")))
                plan = server.routes.get(self.path)
                if not plan:
                    return self._send(404, b"not found", "text/plain")
                behaviour = plan.pop(0) if len(plan) > 1 else plan[0]
                kind = behaviour[0]
                if kind == "status":
                    return self._send(behaviour[1], b"error", "text/plain")
                if kind == "html":
                    return self._send(200, behaviour[1].encode(), "text/html; charset=utf-8")
                if kind == "disguised":
                    return self._send(200, behaviour[1].encode(), "application/octet-stream")
                data = behaviour[1]
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

            def _send(self, code, body, ctype):
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", ctype)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def requests_for(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.log if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


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
