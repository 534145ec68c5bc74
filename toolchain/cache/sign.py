"""ed25519 signatures of cached toolchains, in Nix's trusted-public-keys model: a key pair has
a name; a public key is written `<name>:<base64 of 32 bytes>`, a signature
`<name>:<base64 of 64 bytes>`; a reader trusts the public keys it lists (`cache_trust=`), and
nothing else unless it says `any`."""
from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import ToolchainError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ANY = "any"


class SignatureError(ToolchainError):
    """A signature that is missing, malformed, by an untrusted key, or does not verify."""


@dataclass(frozen=True)
class PublicKey:
    name: str
    raw: bytes

    def __str__(self) -> str:
        return f"{self.name}:{base64.b64encode(self.raw).decode()}"


def _split(text: str, size: int, what: str, where: str) -> tuple[str, bytes]:
    name, sep, data = text.strip().partition(":")
    if not sep or not NAME.match(name):
        raise SignatureError(f"{what} {text.strip()[:80]!r} is not <name>:<base64>", where=where,
                             fix="use what `python -m toolchain keygen` printed or wrote")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError(f"{what} of {name!r} is not base64", where=where) from None
    if len(raw) != size:
        raise SignatureError(f"{what} of {name!r} has {len(raw)} bytes, expected {size}", where=where)
    return name, raw


def public_key(text: str, where: str = "cache_trust") -> PublicKey:
    return PublicKey(*_split(text, 32, "public key", where))


def keygen(name: str, secret_file: Path) -> PublicKey:
    """A new key pair: the secret key written to `secret_file` (mode 0600, never overwritten),
    the public key returned (and written beside it, `.pub`)."""
    if not NAME.match(name):
        raise ToolchainError(f"key name {name!r}: letters, digits, '.', '_', '-', at most 64",
                             fix="e.g. keygen ci.example.org-1 --out ci.key")
    if secret_file.exists():
        raise ToolchainError(f"{secret_file} exists: a secret key is never overwritten",
                             fix="choose another file, or delete that one yourself")
    secret = Ed25519PrivateKey.generate()
    seed = secret.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                serialization.NoEncryption())
    secret_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"{name}:{base64.b64encode(seed).decode()}\n")
    pub = PublicKey(name, secret.public_key().public_bytes(serialization.Encoding.Raw,
                                                           serialization.PublicFormat.Raw))
    secret_file.with_name(secret_file.name + ".pub").write_text(f"{pub}\n")
    return pub


def _secret(secret_file: Path) -> tuple[str, Ed25519PrivateKey]:
    try:
        text = secret_file.read_text()
    except OSError as e:
        raise SignatureError(f"cannot read the secret key: {e.strerror}", where=str(secret_file),
                             fix="name the file `python -m toolchain keygen` wrote (cache_key=FILE)") from None
    name, seed = _split(text, 32, "secret key", str(secret_file))
    return name, Ed25519PrivateKey.from_private_bytes(seed)


def sign(data: bytes, secret_file: Path) -> str:
    name, secret = _secret(secret_file)
    return f"{name}:{base64.b64encode(secret.sign(data)).decode()}"


def trusted_keys(setting: str) -> list[PublicKey] | None:
    """`cache_trust=` as keys; None for `any` (every artifact taken, signed or not)."""
    if setting.strip() == ANY:
        return None
    keys = [public_key(k) for k in re.split(r"[\s,]+", setting.strip()) if k]
    names = [k.name for k in keys]
    for name in names:
        if names.count(name) > 1:
            raise SignatureError(f"two public keys named {name!r}: a signature names its key",
                                 where="cache_trust", fix="list each key once; give new keys new names")
    return keys


def verify(data: bytes, signatures: list[str], trusted: list[PublicKey] | None, *, where: str) -> str:
    """The name of the trusted key whose signature of `data` verifies; else SignatureError
    saying why (no signature, none by a trusted key, or one that does not match)."""
    if trusted is None:
        return ANY
    by_name = {k.name: k for k in trusted}
    if not signatures:
        raise SignatureError("is not signed", where=where,
                             fix="ask for a signed artifact, or say cache_trust=any to take unsigned ones")
    for text in signatures:
        name, raw = _split(text, 64, "signature", where)
        key = by_name.get(name)
        if key is None:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(key.raw).verify(raw, data)
        except InvalidSignature:
            raise SignatureError(f"its signature by {name!r} does not match its contents: changed after "
                                 "it was signed, or signed by another key of that name", where=where) from None
        return name
    names = ", ".join(sorted({s.partition(':')[0] for s in signatures}))
    raise SignatureError(f"is signed by {names}, none of which cache_trust lists", where=where,
                         fix="add that public key to cache_trust= if you trust who holds it")


def described(signer: str) -> str:
    """A signer as verify returned it, for a message."""
    return "unsigned, cache_trust=any" if signer == ANY else f"signed by {signer}"
