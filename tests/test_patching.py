"""Patches are hostile input too: ed scripts and symlink-making git diffs are refused."""
from __future__ import annotations

import pytest

from toolchain.errors import PatchError
from toolchain.sources.patching import apply

SYMLINK = ("diff --git a/sl b/sl\nnew file mode 120000\n--- /dev/null\n+++ b/sl\n@@ -0,0 +1 @@\n+/etc\n"
           "\\ No newline at end of file\n")


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "a.txt").write_text("hello\n")
    return tmp_path / "tree"


def test_a_unified_patch_applies(tree, tmp_path):
    (tmp_path / "ok.patch").write_text("--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-hello\n+hi\n")
    apply(tmp_path / "ok.patch", tree)
    assert (tree / "a.txt").read_text() == "hi\n"


def test_a_patch_making_a_symlink_is_refused_before_patch_runs(tree, tmp_path):
    (tmp_path / "sym.patch").write_text(SYMLINK)
    with pytest.raises(PatchError, match="line 2: the patch makes or changes a symlink") as e:
        apply(tmp_path / "sym.patch", tree)
    assert "sym.patch" in str(e.value)
    assert not (tree / "sl").is_symlink()


def test_an_ed_script_is_not_run(tree, tmp_path):
    (tmp_path / "ed.patch").write_text("1c\nowned\n.\n")
    with pytest.raises(PatchError, match="ed.patch: patch does not apply:(.|\n)*Only garbage"):
        apply(tmp_path / "ed.patch", tree)
    assert (tree / "a.txt").read_text() == "hello\n"


def test_a_patch_reaching_outside_does_not_apply(tree, tmp_path):
    (tmp_path / "up.patch").write_text("--- /dev/null\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+pwned\n")
    with pytest.raises(PatchError, match="up.patch: patch does not apply:(.|\n)*outside.txt"):
        apply(tmp_path / "up.patch", tree)
    assert not (tmp_path / "outside.txt").exists()
