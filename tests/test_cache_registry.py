"""A real toolchain through a real OCI registry on 127.0.0.1 (Debian's docker-registry): the
toolchain built in MUSL_TOOLCHAIN_BUILT_OUT is pushed, signed, with `python -m toolchain
push`, then `doit toolchain:<t> cache=oci://...` in an empty out restores it, its gates run
on it, and its tarball is byte for byte the built one. Prints the push and pull times, the
artifact's size and the key (CI runs it on the aarch64 toolchain it builds cold).

  MUSL_TOOLCHAIN_BUILT_OUT  an out folder where toolchain:<t> is built (skipped without it)
  MUSL_TOOLCHAIN_BUILT      which toolchain (default aarch64)
  MUSL_TOOLCHAIN_DISTFILES  the distfiles folder it was built from (default: doit's)
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DOIT = Path(sys.executable).parent / "doit"


def run(args: list[str], log: Path | None = None) -> subprocess.CompletedProcess:
    r = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=3600, stdin=subprocess.DEVNULL)
    if log:
        log.write_text(r.stdout + r.stderr)
    assert r.returncode == 0, f"{' '.join(args)}\n{(r.stdout + r.stderr)[-4000:]}"
    return r


def test_push_to_a_local_registry_then_restore_into_an_empty_out(tmp_path, registry):
    built_out = os.environ.get("MUSL_TOOLCHAIN_BUILT_OUT")
    if not built_out:
        pytest.skip("MUSL_TOOLCHAIN_BUILT_OUT is not set: no built toolchain to push")
    name = os.environ.get("MUSL_TOOLCHAIN_BUILT", "aarch64")
    host, storage, _ = registry
    cache = f"oci://{host}/musl/toolchains"
    common = [f"distfiles={os.environ['MUSL_TOOLCHAIN_DISTFILES']}"] if os.environ.get("MUSL_TOOLCHAIN_DISTFILES") else []
    public = run([sys.executable, "-m", "toolchain", "keygen", "ci", "--out", str(tmp_path / "ci.key")]).stdout.strip()

    key = run([sys.executable, "-m", "toolchain", "key", name, f"out={built_out}", *common]).stdout.strip()
    started = time.time()
    r = run([sys.executable, "-m", "toolchain", "push", name, f"out={built_out}", f"cache={cache}",
             f"cache_key={tmp_path / 'ci.key'}", *common])
    pushed = time.time() - started
    assert key in r.stdout
    size = sum(f.stat().st_size for f in storage.rglob("data") if "blobs" in f.parts)

    out = tmp_path / "out"
    started = time.time()
    r = run([str(DOIT), f"toolchain:{name}", f"out={out}", f"cache={cache}", f"cache_trust={public}", *common],
            log=tmp_path / "restore.log")
    pulled = time.time() - started
    assert f"[{name}] cache: restored (signed by ci;" in r.stdout, r.stdout[-3000:]
    assert "gates passed" in r.stdout and "toolchain ready" in r.stdout
    # nothing was compiled: only the stages that check a toolchain ran their commands
    assert "make all-gcc" not in r.stdout
    [theirs] = (out / "dist").glob("*.tar.gz")        # an empty out: the restored one only
    assert theirs.read_bytes() == (Path(built_out) / "dist" / theirs.name).read_bytes()
    assert (out / "dist" / f"{theirs.name}.artifact.json").is_file()
    print(f"\n{name}: key {key}\n  artifact in the registry: {size / 2**20:.0f} MiB"
          f"\n  push: {pushed:.0f} s\n  cache hit in an empty out (sources checked, pull, verify, unpack, "
          f"gates): {pulled:.0f} s")
