"""Apply a version's patches to a source tree with GNU patch: -p1, forward only, no fuzz.

A patch is input like any download: GNU patch (2.7.6) itself refuses `..`, absolute names
after -p1 and writing through symlinks; we also make it read unified diffs only (an ed
script would run `ed`), and refuse git diffs that make symlinks (one could point outside
the tree, which the unpacker guarantees it never holds)."""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from ..errors import PatchError

MAX_PATCH = 64 << 20
SYMLINK_MODE = re.compile(rb"^(new file|deleted file|new|old) mode 120000\b", re.M)


def apply(patch_file: Path, tree: Path, *, label: str = "") -> None:
    """Apply one patch; on failure raise with the patch's name and the rejected hunks."""
    label = label or str(patch_file)
    _check(patch_file, label)
    with tempfile.TemporaryDirectory() as tmp:
        rej = Path(tmp) / "rejects.rej"
        r = subprocess.run(
            ["patch", "--unified", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch",
             f"--reject-file={rej}", "-i", str(patch_file)],
            cwd=tree, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            rejected = rej.read_text(errors="replace") if rej.exists() else ""
            if len(rejected) > 4000:
                rejected = rejected[:4000] + "\n[...]"
            raise PatchError(
                "patch does not apply:\n" + _indent(r.stdout + r.stderr)
                + (f"\n  rejected hunks:\n{_indent(rejected)}" if rejected else ""),
                where=label,
                fix="refresh the patch against this version's source (or drop it if upstream "
                    "already has the change)")


def _check(patch_file: Path, label: str) -> None:
    try:
        if patch_file.stat().st_size > MAX_PATCH:
            raise PatchError(f"larger than {MAX_PATCH >> 20} MiB", where=label,
                             fix="this is not a source patch; check the recipe")
        text = patch_file.read_bytes()
    except OSError as e:
        raise PatchError(f"cannot read: {e.strerror}", where=label) from None
    m = SYMLINK_MODE.search(text)
    if m:
        line = text[:m.start()].count(b"\n") + 1
        raise PatchError(f"line {line}: the patch makes or changes a symlink ({m.group().decode()})",
                         where=label, fix="a source patch must change files only; rewrite it without links")


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())
