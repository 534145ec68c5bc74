"""ed25519 signatures: a key pair signs, only trusted keys verify, every tampering is named."""
from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from toolchain.cache import sign
from toolchain.errors import ToolchainError

REPO = Path(__file__).resolve().parent.parent


def test_sign_and_verify_with_a_trusted_key(tmp_path):
    pub = sign.keygen("ci-1", tmp_path / "ci.key")
    assert (tmp_path / "ci.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "ci.key.pub").read_text().strip() == str(pub)
    sig = sign.sign(b"manifest", tmp_path / "ci.key")
    trusted = sign.trusted_keys(str(pub))
    assert sign.verify(b"manifest", [sig], trusted, where="x") == "ci-1"
    with pytest.raises(sign.SignatureError, match="does not match its contents"):
        sign.verify(b"manifest changed", [sig], trusted, where="x")
    other = sign.keygen("other", tmp_path / "other.key")
    with pytest.raises(sign.SignatureError, match="signed by ci-1, none of which cache_trust lists"):
        sign.verify(b"manifest", [sig], [other], where="x")
    with pytest.raises(sign.SignatureError, match="is not signed"):
        sign.verify(b"manifest", [], trusted, where="x")
    assert sign.verify(b"unsigned", [], sign.trusted_keys("any"), where="x") == "any"


def test_a_key_of_the_same_name_but_other_bytes_is_refused(tmp_path):
    real = sign.keygen("ci", tmp_path / "a.key")
    (tmp_path / "b").mkdir()
    impostor = sign.keygen("ci", tmp_path / "b" / "a.key")
    sig = sign.sign(b"data", tmp_path / "b" / "a.key")
    with pytest.raises(sign.SignatureError, match="does not match"):
        sign.verify(b"data", [sig], [real], where="x")
    assert sign.verify(b"data", [sig], [impostor], where="x") == "ci"
    with pytest.raises(sign.SignatureError, match="two public keys named 'ci'"):
        sign.trusted_keys(f"{real},{impostor}")


def test_malformed_keys_and_signatures_are_one_clear_error(tmp_path):
    for bad, match in (("nocolon", "is not <name>:<base64>"), ("ci:!!!", "is not base64"),
                       ("ci:" + base64.b64encode(b"short").decode(), "has 5 bytes, expected 32")):
        with pytest.raises(sign.SignatureError, match=match):
            sign.public_key(bad)
    with pytest.raises(sign.SignatureError, match="has 3 bytes, expected 64"):
        sign.verify(b"d", ["ci:" + base64.b64encode(b"abc").decode()], [], where="x")
    sign.keygen("k", tmp_path / "k.key")
    with pytest.raises(ToolchainError, match="never overwritten"):
        sign.keygen("k", tmp_path / "k.key")
    with pytest.raises(ToolchainError, match="key name"):
        sign.keygen("bad name", tmp_path / "x.key")


def test_keygen_command(tmp_path):
    r = subprocess.run([sys.executable, "-m", "toolchain", "keygen", "ci-2", "--out", str(tmp_path / "ci.key")],
                       cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith("ci-2:") and sign.public_key(r.stdout.strip().splitlines()[0])
    r = subprocess.run([sys.executable, "-m", "toolchain", "keygen", "ci-2", "--out", str(tmp_path / "ci.key")],
                       cwd=REPO, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "never overwritten" in r.stderr and "Traceback" not in r.stderr
