"""Source trees are made only from bytes just verified, and never over a folder the tool did
not make; build folders likewise."""
from __future__ import annotations

import os

import pytest

from conftest import make_tar, sha
from toolchain.sources import recipes, store
from toolchain.errors import ToolchainError
from toolchain.build.runner import OWNED, clean_dir
from toolchain.settings import Settings


@pytest.fixture
def pkg(tmp_path):
    """A recipe whose only location is the distfiles folder (offline), and its settings."""
    data = make_tar({"a.c": b"int a;\n"}, top="pkg-1.0")
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "pkg-1.0.tar.gz").write_bytes(data)
    recipe = tmp_path / "recipes" / "pkg.yaml"
    recipe.parent.mkdir()
    recipe.write_text('package: pkg\nhomepage: https://example.invalid/\ndefault: "1.0"\nversions:\n'
                      '  "1.0":\n    locations:\n      - url: https://example.invalid/pkg-1.0.tar.gz\n'
                      f'        sha256: {sha(data)}\n        hash_from: test\n')
    version = recipes.load_package(recipe).versions["1.0"]
    settings = Settings(out=tmp_path / "out", distfiles=dist, offline=True, debian=False)
    return settings, version, dist / "pkg-1.0.tar.gz"


def swap_same_size(path):
    """Replace a file by other bytes of the same size, keeping its mtime (a careful attacker)."""
    st = path.stat()
    other = make_tar({"a.c": b"int b;\n"}, top="pkg-1.0")
    other = other[:st.st_size].ljust(st.st_size, b"\0")
    assert len(other) == st.st_size and other != path.read_bytes()
    path.write_bytes(other)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_distfile_swapped_for_one_of_the_same_size_is_never_unpacked(pkg):
    settings, version, distfile = pkg
    store.fetch(settings, version)
    assert store.fetch_is_current(settings, version)
    swap_same_size(distfile)
    assert not store.fetch_is_current(settings, version)  # doit fetches again
    with pytest.raises(ToolchainError, match="changed since it was verified"):
        store.prepare(settings, version)                  # and prepare refuses anyway
    assert not store.tree_path(settings, version).exists()


def test_a_touched_but_unchanged_distfile_stays_current(pkg):
    settings, version, distfile = pkg
    store.fetch(settings, version)
    os.utime(distfile, (1, 1))
    assert store.fetch_is_current(settings, version)   # hashed again, same bytes
    assert store.prepare(settings, version).joinpath("a.c").read_text() == "int a;\n"


def test_a_source_folder_the_tool_did_not_make_stops_the_run_and_is_kept(pkg):
    settings, version, _ = pkg
    store.fetch(settings, version)
    mine = store.tree_path(settings, version)
    mine.mkdir(parents=True)
    (mine / "my-work.c").write_text("precious\n")
    with pytest.raises(ToolchainError, match="not a source tree this tool made") as e:
        store.prepare(settings, version)
    assert "move it away" in str(e.value)
    assert (mine / "my-work.c").read_text() == "precious\n"


def test_a_tree_the_tool_made_is_replaced_when_its_patches_change(pkg):
    settings, version, _ = pkg
    store.fetch(settings, version)
    tree = store.prepare(settings, version)
    (tree / store.MARKER).write_text('{"source_sha256": "old"}')
    assert store.prepare(settings, version) == tree
    assert (tree / "a.c").is_file() and '"old"' not in (tree / store.MARKER).read_text()


def test_clean_dir_empties_only_its_own_folders(tmp_path):
    own = clean_dir(tmp_path / "obj")
    assert (own / OWNED).is_file()
    (own / "stale.o").write_text("")
    assert not (clean_dir(own) / "stale.o").exists()
    (tmp_path / "empty").mkdir()
    assert (clean_dir(tmp_path / "empty") / OWNED).is_file()
    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("x")
    with pytest.raises(ToolchainError, match="did not make it"):
        clean_dir(user)
    assert (user / "thesis.tex").read_text() == "x"
    (tmp_path / "link").symlink_to(own)
    with pytest.raises(ToolchainError, match="link exists, but this tool did not make it"):
        clean_dir(tmp_path / "link")
    assert (own / OWNED).is_file()
