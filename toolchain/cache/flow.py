"""The cache in a build (`cache=` set): the first stage of a toolchain first looks its key up
and, on a hit, restores it; every later stage of that toolchain then only marks itself done,
except the gates that build nothing (hello, the kernel headers' program, the package
checks), which run on the restored toolchain as on a built one. After a build whose gates
all passed, `cache_push=1` uploads it. A cache that cannot be used is one message, and the
build goes on as without it."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..build.context import Build
from ..errors import ToolchainError
from . import artifact, backends, sign
from . import key as key_mod
from ..say import say

# stages that only check the toolchain (they compile and run test programs in the build
# folder), run again on a restored one
GATES = ("hello", "linux_headers_gate")


_KEYS: dict[tuple[str, str], str] = {}


def current_key(b: Build) -> str:
    """The toolchain's key, computed once per doit run (its inputs do not change during one)."""
    where = (str(b.settings.out), b.name)
    if where not in _KEYS:
        _KEYS[where] = key_mod.key(b)
    return _KEYS[where]


def try_restore(b: Build) -> bool:
    """Look the toolchain up in the cache; True when it was restored."""
    s = b.settings
    (b.work / "restored.json").unlink(missing_ok=True)
    started = time.time()
    try:
        be = backends.backend(s.cache)
        key = current_key(b)
        say(f"[{b.name}] cache: looking up {key[:16]}... in {be}")
        record = artifact.restore(b, be, sign.trusted_keys(s.cache_trust))
    except ToolchainError as e:
        say(f"[{b.name}] cache: not used: {e}\n[{b.name}] building instead")
        return False
    if record is None:
        say(f"[{b.name}] cache: not there: building")
        return False
    say(f"[{b.name}] cache: restored ({sign.described(record['signed_by'])}; {record['files']} files checked) in "
        f"{time.time() - started:.1f} s")
    return True


def restored(b: Build) -> bool:
    """This toolchain's prefix is a restored one for its current key."""
    try:
        record = json.loads((b.work / "restored.json").read_text())
    except (OSError, ValueError):
        return False
    return record.get("key") == current_key(b)


def push(b: Build) -> None:
    """Upload the toolchain whose gates all passed; a failure is a warning (it is built)."""
    s = b.settings
    try:
        key = artifact.publish(b, backends.backend(s.cache), s.cache_key)
    except ToolchainError as e:
        say(f"[{b.name}] cache: not pushed: {e}")
        return
    say(f"[{b.name}] cache: pushed as {key}" + ("" if s.cache_key else " (unsigned: cache_key= not set)"))
