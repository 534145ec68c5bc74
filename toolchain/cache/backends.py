"""Where cached toolchains live: a folder, an HTTP(S) server (GET to read, PUT to write: any
static web server for readers, WebDAV for writers), or an OCI registry (oci://). One folder per key, holding
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


def _oras_client(host: str, insecure: bool):
    """ORAS's client, bounded: every request with a timeout (its own have none), and two tries
    a second apart instead of its five with growing waits (two minutes for a registry that
    is down)."""
    import functools
    import time
    import oras.client
    import oras.provider
    once = oras.provider.Registry.do_request.__wrapped__     # without its retry decorator

    class Client(oras.client.OrasClient):
        def do_request(self, *args, **kwargs):
            for attempt in (1, 2):
                try:
                    return once(self, *args, **kwargs)
                except (requests.ConnectionError, requests.Timeout):
                    if attempt == 2:
                        raise
                    time.sleep(1)

    client = Client(hostname=host, insecure=insecure)
    client.session.request = functools.partial(client.session.request, timeout=TIMEOUT)
    return client


class Oci:
    """An OCI registry (oci://HOST[:PORT]/REPOSITORY), through the ORAS client: one artifact
    per key, tagged with the key, its files as layers named by their title annotation, the
    key and toolchain as manifest annotations. Written as one push when artifact.json (the
    last file) is put; read layer by layer, each bounded by the size the manifest gives and
    checked against its digest. localhost and 127.0.0.1 are spoken to over plain HTTP (as
    docker does); every other registry over HTTPS, with the login of `oras login`."""

    def __init__(self, host: str, repository: str):
        self.host, self.repository = host, repository
        self.client = _oras_client(host, insecure=host.split(":")[0] in ("localhost", "127.0.0.1"))
        self.staged: dict[str, dict[str, Path]] = {}
        self.manifests: dict[str, dict] = {}

    def __str__(self) -> str:
        return f"oci://{self.host}/{self.repository}"

    def _ref(self, key: str) -> str:
        return f"{self.host}/{self.repository}:{key}"

    def _layer(self, key: str, name: str) -> dict:
        import oras.defaults
        if key not in self.manifests:
            try:
                self.manifests[key] = self.client.get_manifest(self._ref(key))
            except Exception as e:          # oras raises ValueError, requests' errors, its own
                text = str(e)
                if "404" in text or "MANIFEST_UNKNOWN" in text or "not found" in text.lower():
                    raise Missing("no artifact for this key", where=self._ref(key)) from None
                raise CacheError(f"cannot be read: {type(e).__name__}: {text.splitlines()[0][:200] if text else ''}",
                                 where=self._ref(key)) from None
        for layer in self.manifests[key].get("layers", []):
            if (layer.get("annotations") or {}).get(oras.defaults.annotation_title) == name:
                return layer
        raise Missing(f"no {name} in the artifact", where=self._ref(key))

    def _read(self, key: str, layer: dict, limit: int, out) -> None:
        import hashlib
        digest = str(layer.get("digest", ""))
        size = layer.get("size")
        if not digest.startswith("sha256:") or not isinstance(size, int) or not 0 <= size <= limit:
            raise CacheError(f"layer {digest[:20]} of size {size} is not one this tool reads", where=self._ref(key))
        h, got = hashlib.sha256(), 0
        try:
            with self.client.get_blob(self._ref(key), digest, stream=True) as r:
                if r.status_code != 200:
                    raise CacheError(f"blob {digest[:20]}: answered {r.status_code}", where=self._ref(key))
                for chunk in r.iter_content(1 << 16):
                    got += len(chunk)
                    if got > size:
                        raise CacheError(f"blob {digest[:20]} sends more than its {size} bytes", where=self._ref(key))
                    h.update(chunk)
                    out.write(chunk)
        except requests.RequestException as e:
            raise CacheError(f"cannot be read: {type(e).__name__}", where=self._ref(key)) from None
        if got != size or f"sha256:{h.hexdigest()}" != digest:
            raise CacheError(f"blob {digest[:20]} is not what its digest says (cut or changed)", where=self._ref(key))

    def read_small(self, key: str, name: str) -> bytes:
        import io
        buf = io.BytesIO()
        self._read(key, self._layer(key, name), SMALL, buf)
        return buf.getvalue()

    def fetch(self, key: str, name: str, dest: Path, sha256: str, size: int) -> None:
        layer = self._layer(key, name)
        if layer.get("digest") != f"sha256:{sha256}" or layer.get("size") != size:
            raise CacheError(f"its {name} layer is not the one its artifact.json names", where=self._ref(key))
        with open(dest, "wb") as f:
            self._read(key, layer, size, f)

    def put(self, key: str, name: str, src: Path) -> None:
        from .artifact import ARTIFACT
        staged = self.staged.setdefault(key, {})
        staged[name] = src
        if name != ARTIFACT:
            return
        with tempfile.TemporaryDirectory() as tmp:
            files = []
            for file_name, path in staged.items():     # titled by their names in the artifact
                os.symlink(os.path.abspath(path), Path(tmp) / file_name)
                files.append(str(Path(tmp) / file_name))
            try:
                self.client.push(target=self._ref(key), files=files, disable_path_validation=True, quiet=True,
                                 manifest_annotations={"io.github.musl-toolchain.key": key})
            except Exception as e:
                text = str(e).splitlines()[0][:200] if str(e) else ""
                raise CacheError(f"cannot be written: {type(e).__name__}: {text}", where=self._ref(key),
                                 fix="check `oras login` for the registry and the repository's write access") from None
        del self.staged[key]


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
    if scheme == "oci":
        parts = urlsplit(text)
        repository = parts.path.strip("/")
        if not parts.netloc or not repository or not all(c.isalnum() or c in "._-/" for c in repository):
            raise ToolchainError(f"cache={text!r} is not oci://HOST[:PORT]/REPOSITORY", where="setting cache",
                                 fix="e.g. cache=oci://ghcr.io/your-org/musl-toolchains")
        return Oci(parts.netloc, repository.lower())
    if scheme == "file":
        text = urlsplit(text).path
    elif scheme and len(scheme) > 1:
        raise ToolchainError(f"cache={text!r}: {scheme}:// is not a cache this tool can use", where="setting cache",
                             fix="write a folder, file://FOLDER, an http(s):// base URL or oci://HOST/REPOSITORY")
    return Folder(Path(text).expanduser().absolute())
