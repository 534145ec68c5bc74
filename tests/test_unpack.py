"""Safe extraction: crafted tarballs with each kind of escape are refused, nothing is left."""
from __future__ import annotations

import copy
import hashlib
import io
import itertools
import os
import stat
import tarfile

import pytest

from conftest import make_tar
from toolchain.errors import UnpackError
from toolchain.sources.unpack import extract


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
            body = data.get(m.name) if m.isreg() else None
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
    # d -> sub -> .. is tmp/ itself; the member's own name is harmless (no '..', not absolute)
    archive = crafted(tmp, info("pkg/d", tarfile.SYMTYPE, "sub"), info("pkg/sub", tarfile.SYMTYPE, ".."),
                      info("pkg/d/victim/x"), data={"pkg/d/victim/x": b"pwned"})
    with pytest.raises(UnpackError, match="its path passes through the symlink 'd'") as e:
        extract(archive, tmp / "out")
    assert "member 'pkg/d/victim/x'" in str(e.value)
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


# -- hostile member orders: nothing outside the tree may change ------------------------------

def snapshot(root) -> dict:
    """Everything an escape could change below `root`: type, content, owner, mode, mtime."""
    seen = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            body = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else os.readlink(p) \
                if stat.S_ISLNK(st.st_mode) else None
            seen[os.path.relpath(p, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, body)
    return seen


@pytest.fixture
def victim(tmp):
    """A folder beside the extraction (tmp/victim/secret), owned by someone else, old mtime."""
    d = tmp / "victim"
    d.mkdir()
    (d / "secret").write_bytes(b"do not touch\n")
    os.chmod(d / "secret", 0o640)
    if os.geteuid() == 0:
        os.chown(d / "secret", 4321, 4321)
    os.utime(d / "secret", (1_000_000, 1_000_000))
    return d


def member(name, kind=tarfile.REGTYPE, link="", mode=0o644):
    i = info(name, kind, link)
    i.mode, i.mtime, i.uid, i.gid = mode, 0, 0, 0
    return i


def body_for(members):
    return {m.name: b"pwned\n" for m in members if m.type == tarfile.REGTYPE}


SYM, HARD, DIR = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE
# what the unpacker says when a member would reach outside through links (which one depends
# on the order of the members)
LINK_REFUSAL = (r"a second member with this path|its path passes through the symlink|"
                r"which is not a regular file extracted before it|points outside the tree")

# p -> q/.. is inside while q does not exist; q -> . then makes p the tree's parent, so a link
# or a path through p reaches tmp/victim. Each case is tried in every member order below.
REPOINT = [member("pkg/p", SYM, "q/.."), member("pkg/q", SYM, ".")]
ATTACKS = {
    "file-written-through-a-symlink": [member("pkg/s", SYM, "p/victim/secret"), member("pkg/s")],
    "file-in-a-folder-reached-through-links": [member("pkg/p/victim/new")],
    "hard-link-to-a-file-outside": [member("pkg/h", HARD, "pkg/p/victim/secret", mode=0o6777)],
    "hard-link-through-a-chain": [member("pkg/s", SYM, "p/victim"), member("pkg/h", HARD, "pkg/s/secret",
                                                                          mode=0o6777)],
    "hard-link-to-a-symlink": [member("pkg/s", SYM, "p/victim/secret"), member("pkg/h", HARD, "pkg/s")],
    "folder-attributes-through-a-link": [member("pkg/p/victim", DIR, mode=0o7777)],
}


@pytest.mark.parametrize("case", ATTACKS)
def test_repointed_links_cannot_change_anything_outside_in_any_order(tmp, victim, case):
    members = REPOINT + ATTACKS[case]
    before = snapshot(victim)
    orders = list(itertools.permutations(range(len(members))))
    for n, order in enumerate(orders):
        ordered = [copy.copy(members[i]) for i in order]
        archive = crafted(tmp, *ordered, data=body_for(ordered), name=f"evil-{n}.tar")
        with pytest.raises(UnpackError, match=LINK_REFUSAL):
            extract(archive, tmp / f"out-{n}")
        assert not (tmp / f"out-{n}").exists(), order
        assert snapshot(victim) == before, order
    assert len(orders) >= 6


def test_a_path_is_never_written_twice(tmp, victim):
    # the second pkg/l would re-point a link that earlier members were checked against
    archive = crafted(tmp, member("pkg/sub", DIR), member("pkg/l", SYM, "sub"), member("pkg/l", SYM, "../victim"))
    with pytest.raises(UnpackError, match="second member"):
        extract(archive, tmp / "out")
    archive = crafted(tmp, member("pkg/f"), member("pkg/f"), data={"pkg/f": b"x"}, name="twice.tar")
    with pytest.raises(UnpackError, match="second member"):
        extract(archive, tmp / "out")


def test_a_file_member_is_never_written_through_a_link_on_disk(tmp, victim):
    # even a symlink the archive made inside the tree is not followed when writing
    archive = crafted(tmp, member("pkg/d", DIR), member("pkg/d/x", SYM, "../ok.txt"),
                      member("pkg/d/x/y"), data={"pkg/d/x/y": b"pwned\n"})
    with pytest.raises(UnpackError, match="symlink 'd/x'"):
        extract(archive, tmp / "out")


@pytest.mark.parametrize("link, message", [
    ("/", "points outside"), ("..", "points outside"), ("sub/../..", "points outside"),
    ("loop2", "loops"),
])
def test_a_tree_never_keeps_a_link_to_outside(tmp, link, message):
    archive = crafted(tmp, member("pkg/sub", DIR), member("pkg/loop2", SYM, "loop1"),
                      member("pkg/loop1", SYM, link))
    with pytest.raises(UnpackError, match=message):
        extract(archive, tmp / "out")
    assert not (tmp / "out").exists()


def test_links_are_resolved_against_the_archive_not_the_disk(tmp):
    # up -> a/b/../../.. is outside only once a/b is known to be a link to `.`
    archive = crafted(tmp, member("pkg/up", SYM, "a/b/../../.."), member("pkg/a", DIR),
                      member("pkg/a/b", SYM, "."))
    with pytest.raises(UnpackError, match="'pkg/up'.*|points outside"):
        extract(archive, tmp / "out")


def test_flat_tarball_is_named_as_such(tmp):
    path = tmp / "flat.tar"
    with tarfile.open(path, "w") as tar:
        for name in ("README", "src/a.c"):
            i = tarfile.TarInfo(name)
            i.size = 2
            tar.addfile(i, io.BytesIO(b"x\n"))
    with pytest.raises(UnpackError, match="flat tarball") as e:
        extract(path, tmp / "out")
    assert "flat.tar" in str(e.value) and "fix:" in str(e.value)
    assert not (tmp / "out").exists()


def test_two_top_folders_are_refused(tmp):
    path = tmp / "two.tar"
    with tarfile.open(path, "w") as tar:
        for name in ("a-1.0/x", "b-1.0/x"):
            i = tarfile.TarInfo(name)
            tar.addfile(i, io.BytesIO(b""))
    with pytest.raises(UnpackError, match="more than one"):
        extract(path, tmp / "out")


def test_empty_archive_is_refused(tmp):
    path = tmp / "empty.tar"
    tarfile.open(path, "w").close()
    with pytest.raises(UnpackError, match="no members"):
        extract(path, tmp / "out")


def test_dot_slash_names_and_attributes(tmp):
    path = tmp / "dot.tar"
    with tarfile.open(path, "w") as tar:
        for name, kind, mode, mtime in (("./", DIR, 0o755, 5), ("./pkg-1/", DIR, 0o755, 7),
                                        ("./pkg-1/d", DIR, 0o750, 1234), ("./pkg-1/d/f", tarfile.REGTYPE, 0o755, 99)):
            i = tarfile.TarInfo(name)
            i.type, i.mode, i.mtime = kind, mode, mtime
            tar.addfile(i, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    extract(path, tmp / "out")
    assert (tmp / "out" / "d" / "f").stat().st_mtime == 99
    assert (tmp / "out" / "d" / "f").stat().st_mode & 0o7777 == 0o755
    assert (tmp / "out" / "d").stat().st_mtime == 1234  # set after its files were written
    assert (tmp / "out" / "d").stat().st_mode & 0o7777 == 0o750


def test_the_bytes_extracted_are_the_bytes_verified(tmp):
    (tmp / "good.tar.gz").write_bytes(make_tar({"x": b"1"}))
    with pytest.raises(UnpackError, match="changed since it was verified"):
        extract(tmp / "good.tar.gz", tmp / "out", sha256="0" * 64)
    assert not (tmp / "out").exists()
    extract(tmp / "good.tar.gz", tmp / "out", sha256=hashlib.sha256((tmp / "good.tar.gz").read_bytes()).hexdigest())
    assert (tmp / "out" / "x").read_bytes() == b"1"


def test_only_writes_the_paths_asked_for_and_their_folders(tmp):
    (tmp / "k.tar.xz").write_bytes(make_tar({
        "Makefile": b"all:\n", "include/uapi/linux/a.h": b"a\n", "arch/x86/include/uapi/asm/b.h": b"b\n",
        "arch/x86/kernel/big.c": b"c\n", "drivers/huge.c": b"d\n", "arch/x86/Makefile": b"x\n",
        "arch/x86/boot/Makefile": b"y\n"}, mode="w:xz"))
    extract(tmp / "k.tar.xz", tmp / "out", only=("Makefile", "include/uapi", "arch/*/include/uapi", "arch/*/Makefile"))
    found = sorted(str(p.relative_to(tmp / "out")) for p in (tmp / "out").rglob("*") if p.is_file())
    assert found == ["Makefile", "arch/x86/Makefile", "arch/x86/include/uapi/asm/b.h", "include/uapi/linux/a.h"]


def test_only_with_a_bang_leaves_out_what_it_matches_and_the_last_match_decides(tmp):
    (tmp / "g.tar.gz").write_bytes(make_tar({
        "configure": b"#!/bin/sh\n", "gcc/tree.cc": b"t\n", "gcc/testsuite/gcc.dg/a.c": b"a\n",
        "gcc/testsuite/selftests/b.c": b"b\n", "gcc/testsuite-notes": b"n\n", "ld/testsuite/c.s": b"c\n"}))
    extract(tmp / "g.tar.gz", tmp / "out", only=("*", "!gcc/testsuite", "gcc/testsuite/selftests", "!ld/testsuite"))
    found = sorted(str(p.relative_to(tmp / "out")) for p in (tmp / "out").rglob("*") if p.is_file())
    assert found == ["configure", "gcc/testsuite-notes", "gcc/testsuite/selftests/b.c", "gcc/tree.cc"]


def test_only_never_writes_through_a_link_it_skipped(tmp):
    """A kept member under a skipped symlink lands in a real folder inside the tree."""
    outside = tmp / "outside"
    outside.mkdir()
    path = crafted(tmp, info("pkg/inc", tarfile.SYMTYPE, "../../outside"), info("pkg/inc/x.h"),
                   data={"pkg/inc/x.h": b"x\n"})
    extract(path, tmp / "out", only=("inc/x.h",))
    assert (tmp / "out" / "inc" / "x.h").read_text() == "x\n" and not (tmp / "out" / "inc").is_symlink()
    assert list(outside.iterdir()) == []
