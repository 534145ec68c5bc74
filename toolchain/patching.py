"""Apply a version's patches to a source tree with GNU patch: -p1, forward only, no fuzz."""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .errors import PatchError


def apply(patch_file: Path, tree: Path, *, label: str = "") -> None:
    """Apply one patch; on failure raise with the patch's name and the rejected hunks."""
    label = label or str(patch_file)
    with tempfile.TemporaryDirectory() as tmp:
        rej = Path(tmp) / "rejects.rej"
        r = subprocess.run(
            ["patch", "-p1", "--forward", "--batch", "--fuzz=0", "--no-backup-if-mismatch",
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


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())
