"""Safe extraction: crafted tarballs with each kind of escape are refused, nothing is left."""
from __future__ import annotations

import io
import tarfile

import pytest

from conftest import make_tar
from toolchain.errors import UnpackError
from toolchain.unpack import extract


def crafted(tmp, *members: tarfile.TarInfo, data: dict[str, bytes] | None = None, name="evil.tar"):
    """A tar with pkg/ok.txt first, then the crafted members."""
    data = data or {}
    path = tmp / name
    with tarfile.open(path, "w") as tar:
        top = tarfile.TarInfo("pkg")
        top.type = tarfile.DIRTYPE
        tar.addfile(top)
        ok = tarfile.TarInfo("pkg/ok.txt")
        ok.size = 3
        tar.addfile(ok, io.BytesIO(b"ok\n"))
        for m in members:
            body = data.get(m.name)
            if body is not None:
                m.size = len(body)
            tar.addfile(m, io.BytesIO(body) if body is not None else None)
    return path


def info(name, kind=tarfile.REGTYPE, link="") -> tarfile.TarInfo:
    i = tarfile.TarInfo(name)
    i.type, i.linkname, i.mode = kind, link, 0o644
    return i


def test_good_tarball_extracts_with_top_folder_stripped(tmp):
    (tmp / "good.tar.gz").write_bytes(make_tar({"src": None, "src/a.c": b"int a;\n", "README": b"hi\n"}))
    extract(tmp / "good.tar.gz", tmp / "out")
    assert (tmp / "out" / "src" / "a.c").read_text() == "int a;\n"
    assert (tmp / "out" / "README").is_file()


def test_xz_tarball_extracts(tmp):
    (tmp / "good.tar.xz").write_bytes(make_tar({"x": b"1"}, mode="w:xz"))
    extract(tmp / "good.tar.xz", tmp / "out")
    assert (tmp / "out" / "x").read_bytes() == b"1"


@pytest.mark.parametrize("member, message", [
    (info("/etc/evil"), "absolute path"),
    (info("pkg/../../evil"), "'..'"),
    (info("pkg/link", tarfile.SYMTYPE, "/etc/passwd"), "points outside"),
    (info("pkg/link", tarfile.SYMTYPE, "../../etc"), "points outside"),
    (info("pkg/hard", tarfile.LNKTYPE, "/etc/passwd"), "hard link"),
    (info("pkg/hard", tarfile.LNKTYPE, "pkg/../../x"), "hard link"),
    (info("pkg/tty", tarfile.CHRTYPE), "device file"),
    (info("pkg/disk", tarfile.BLKTYPE), "device file"),
    (info("pkg/fifo", tarfile.FIFOTYPE), "FIFO"),
], ids=["absolute", "dotdot", "symlink-absolute", "symlink-relative", "hardlink-absolute",
        "hardlink-dotdot", "chardev", "blockdev", "fifo"])
def test_escapes_are_refused_and_nothing_is_left(tmp, member, message):
    archive = crafted(tmp, member)
    with pytest.raises(UnpackError) as e:
        extract(archive, tmp / "out")
    assert message in str(e.value)
    assert "evil.tar" in str(e.value) and member.name in str(e.value)
    assert not (tmp / "out").exists()


def test_chain_of_inside_links_cannot_escape(tmp):
    # each link alone looks harmless; p -> . makes p/p/p/up -> ../../.. leave the tree
    archive = crafted(tmp, info("pkg/p", tarfile.SYMTYPE, "."),
                      info("pkg/p/p/up", tarfile.SYMTYPE, "../../.."))
    with pytest.raises(UnpackError, match="outside"):
        extract(archive, tmp / "out")
    assert not (tmp / "out").exists()


def test_writing_through_a_link_to_outside_is_refused(tmp):
    (tmp / "victim").mkdir()
    archive = crafted(tmp, info("pkg/d", tarfile.SYMTYPE, "sub"), info("pkg/sub", tarfile.SYMTYPE, "."),
                      info("pkg/d/../../victim/x"), data={"pkg/d/../../victim/x": b"pwned"})
    with pytest.raises(UnpackError):
        extract(archive, tmp / "out")
    assert not (tmp / "victim" / "x").exists()


def test_links_inside_the_tree_are_fine(tmp):
    archive = crafted(tmp, info("pkg/lib", kind=tarfile.DIRTYPE), info("pkg/lib/a.txt"),
                      info("pkg/alias", tarfile.SYMTYPE, "lib/a.txt"),
                      info("pkg/hard", tarfile.LNKTYPE, "pkg/ok.txt"), data={"pkg/lib/a.txt": b"A"})
    extract(archive, tmp / "out")
    assert (tmp / "out" / "alias").read_text() == "A"
    assert (tmp / "out" / "hard").read_text() == "ok\n"


def test_setuid_bits_are_dropped(tmp):
    m = info("pkg/tool")
    m.mode = 0o4755
    extract(crafted(tmp, m, data={"pkg/tool": b"#!/bin/sh\n"}), tmp / "out")
    assert (tmp / "out" / "tool").stat().st_mode & 0o7777 == 0o755


def test_damaged_archive_names_the_file(tmp):
    good = make_tar({"a": b"x" * 100000})
    (tmp / "broken.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(UnpackError, match="broken.tar.gz"):
        extract(tmp / "broken.tar.gz", tmp / "out")
    assert not (tmp / "out").exists()
