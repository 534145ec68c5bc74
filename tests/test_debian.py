"""Debian's source archive through the real apt-get, against a small archive on 127.0.0.1."""
from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import tarfile
import threading

import pytest

from conftest import make_tar, sha
from toolchain.sources.debian import (Apt, Archive, compare_versions, debian_archives, deb_src_stanzas, newest_first,
                              upstream_part)
from toolchain.errors import FetchError
from toolchain.sources.fetch import Fetcher
from toolchain.sources.recipes import Location

needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get (Debian/Ubuntu)")


def test_deb_src_is_derived_from_the_machines_sources(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://archive.example/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://archive.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    (d / "vendor.sources").write_text("Types: deb\nURIs: http://vendor.example/apt\nSuites: stable\n"
                                      "Components: main\nSigned-By: /etc/apt/keyrings/vendor.gpg\n")
    (tmp_path / "sources.list").write_text("deb [signed-by=/k.gpg] http://mirror.example/debian trixie main\n")
    found = debian_archives((tmp_path / "sources.list", d))
    assert [a.uri for a in found] == ["http://mirror.example/debian", "http://archive.example/debian"]
    text = deb_src_stanzas(found[1:], ("trixie", "sid"))
    assert "Types: deb-src" in text and "Suites: trixie sid" in text
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in text


def test_upstream_part_of_debian_versions():
    assert upstream_part("2:6.3.0+dfsg-5") == "6.3.0+dfsg"
    assert upstream_part("3.1-20250104-1") == "3.1-20250104"
    assert upstream_part("1.2.6") == "1.2.6"


# pairs where a naive comparison goes wrong; dpkg itself is the judge
TRICKY = [
    ("1.0~rc1", "1.0"), ("1.0~rc1", "1.0~rc1~1"), ("1.0~", "1.0"), ("1:0.9", "2.0"), ("0:1.0", "1.0"),
    ("1.2.5-3~deb12u1", "1.2.5-3"), ("1.2.5-3+deb12u1", "1.2.5-3"), ("1.2.5-3~bpo12+1", "1.2.5-2"),
    ("6.6+20251231-1", "6.6-1"), ("6.6+20251231-1", "6.6.1-1"), ("1.0a", "1.0+"), ("1.0a", "1.0"),
    ("1.0-0", "1.0"), ("1.0-1", "1.0"), ("1.0.0", "1.0"), ("1.01", "1.1"), ("1.10", "1.9"),
    ("1.0a", "1.0A"), ("1.0.", "1.0"), ("1.0+", "1.0."), ("3.1-20250104-1", "3.1-20250103-2"),
    ("2:6.3.0+dfsg-5", "1:7.0-1"), ("1.2.3-1.1", "1.2.3-1+b1"), ("a", "1"), ("1.0~~", "1.0~"),
    ("10:1-1", "9:9-9"), ("1:1.0-1", "1:1.0-1"), ("1.0-1~", "1.0-1"), ("12.2.0-14+deb12u1", "12.2.0-14"),
]


def _dpkg_says(a: str, b: str) -> int:
    """-1, 0 or 1 by dpkg --compare-versions (always on Debian: missing, the test fails)."""
    def holds(op: str) -> bool:
        return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0
    return -1 if holds("lt") else 0 if holds("eq") else 1


@pytest.mark.parametrize("a,b", TRICKY, ids=[f"{a} vs {b}" for a, b in TRICKY])
def test_version_order_is_dpkgs(a, b):
    expected = _dpkg_says(a, b)
    assert (compare_versions(a, b), compare_versions(b, a)) == (expected, -expected)


def test_newest_first_puts_a_stable_update_below_its_base_revision():
    assert newest_first(["1.2.5-3~deb12u1", "1.2.5-3", "1.2.5-2", "1.2.5-3", "1:1.0-1"]) == \
        ["1:1.0-1", "1.2.5-3", "1.2.5-3~deb12u1", "1.2.5-2"]


def _checksums(files: dict[str, bytes]) -> str:
    sha_lines = "".join(f" {sha(d)} {len(d)} {n}\n" for n, d in files.items())
    md5_lines = "".join(f" {hashlib.md5(d).hexdigest()} {len(d)} {n}\n" for n, d in files.items())
    return f"Checksums-Sha256:\n{sha_lines}Files:\n{md5_lines}"


def _publish(server, packages: list[tuple[str, str, dict[str, bytes]]], served: str) -> str:
    """A one-suite (sid) archive of testpkg: (version, pool folder, files) each, in the index's
    order; only the files of `served` versions are downloadable. Returns the archive's URL."""
    head = "Package: testpkg\nBinary: testpkg\nMaintainer: T <t@example.invalid>\nArchitecture: any\n" \
           "Format: 3.0 (quilt)\n"
    sources = "\n".join(f"{head}Version: {v}\nDirectory: pool/main/t/{folder}\n{_checksums(files)}"
                        for v, folder, files in packages).encode()
    release = (f"Suite: sid\nCodename: sid\nComponents: main\nArchitectures: source\n"
               f"SHA256:\n {sha(sources)} {len(sources)} main/source/Sources\n").encode()
    server.routes["/debian/dists/sid/Release"] = [("file", release)]
    server.routes["/debian/dists/sid/main/source/Sources"] = [("file", sources)]
    for v, folder, files in packages:
        if v in served:
            for name, data in files.items():
                server.routes[f"/debian/pool/main/t/{folder}/{name}"] = [("file", data)]
    return server.url + "/debian"


@pytest.fixture
def archive(server):
    """testpkg 1.0-2 (files gone, as seen in sid) and 1.0-1 (served)."""
    if shutil.which("apt-get") is None:
        pytest.skip("needs apt-get (Debian/Ubuntu)")
    orig = make_tar({"hello.c": b"hello\n"}, top="testpkg-1.0")
    patch = b"--- a/hello.c\n+++ b/hello.c\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        info = tarfile.TarInfo("debian/patches/fix.patch")
        info.size = len(patch)
        tar.addfile(info, io.BytesIO(patch))
    debian_tar = buf.getvalue()
    files1 = {"testpkg_1.0-1.dsc": b"dsc\n", "testpkg_1.0.orig.tar.gz": orig,
              "testpkg_1.0-1.debian.tar.xz": debian_tar}
    files2 = {"testpkg_1.0-2.dsc": b"dsc2\n", "testpkg_1.0.orig.tar.gz": orig,
              "testpkg_1.0-2.debian.tar.xz": debian_tar}
    url = _publish(server, [("1.0-2", "gone", files2), ("1.0-1", "testpkg", files1)], served=["1.0-1"])
    return {"orig": orig, "patch": patch, "url": url}


def make_fetcher(tmp_path, archive) -> Fetcher:
    apt = Apt(tmp_path / "apt", suites=("sid",), archives=[Archive(archive["url"], trusted=True)])
    return Fetcher(tmp_path / "dist", apt=apt, backoff=0.0)


@needs_apt
@pytest.mark.parametrize("force", [False, True])
def test_fetches_side_by_side_refresh_the_index_once(tmp_path, server, force):
    """doit -n 2 fetches two packages at once from one apt state: they used to run apt-get
    update together, and one failed ("Failed to stat .../lists/partial/..."). Fetches that
    each ask for a refresh (a file missing from the index) are served by the first one."""
    url = _publish(server, [("1.0-1", "testpkg", {"testpkg_1.0-1.dsc": b"dsc\n"})], served=["1.0-1"])
    release = "/debian/dists/sid/Release"
    # a slow answer keeps the first refresh running while the others start
    server.routes[release] = [("drip", server.routes[release][0][1], 16, 0.05)]
    errors: list[BaseException] = []

    def fetch_index():
        apt = Apt(tmp_path / "apt", suites=("sid",), archives=[Archive(url, trusted=True)])
        try:
            apt.update(force=force)
            assert apt.versions("testpkg") == ["1.0-1"]
        except BaseException as e:          # noqa: BLE001 - reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=fetch_index) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not errors, errors
    assert len(server.requests_for(release)) == 1


@needs_apt
def test_candidates_put_a_stable_update_after_its_base_revision(tmp_path, server):
    versions = ["1.0-1~deb12u1", "1.0-1", "0.9-1", "1.0-1+b1"]
    url = _publish(server, [(v, f"v{i}", {f"testpkg_{v}.dsc": v.encode()}) for i, v in enumerate(versions)],
                   served=[])
    apt = Apt(tmp_path / "apt", suites=("sid",), archives=[Archive(url, trusted=True)])
    apt.update()
    assert apt.candidates("testpkg", "1.0") == ["1.0-1+b1", "1.0-1", "1.0-1~deb12u1"]


def test_orig_from_debian_tries_each_revision(tmp_path, archive, server):
    loc = Location("debian", "testpkg_1.0.orig.tar.gz", sha(archive["orig"]), "test", debian="testpkg")
    got = make_fetcher(tmp_path, archive).fetch((loc,), "testpkg 1.0")
    assert got.path.read_bytes() == archive["orig"]
    assert "testpkg 1.0-1" in got.origin
    assert server.requests_for("/debian/pool/main/t/gone/testpkg_1.0.orig.tar.gz")  # tried 1.0-2 first


def test_member_of_a_debian_tarball_with_any_revision(tmp_path, archive):
    loc = Location("debian", "testpkg_1.0-*.debian.tar.xz", sha(archive["patch"]), "test", debian="testpkg",
                   member="debian/patches/fix.patch")
    got = make_fetcher(tmp_path, archive).fetch((loc,), "testpkg patch")
    assert got.path.name == "fix.patch" and got.path.read_bytes() == archive["patch"]


def test_recipe_hash_differing_from_debians_index_is_reported(tmp_path, archive):
    loc = Location("debian", "testpkg_1.0.orig.tar.gz", "0" * 64, "test", debian="testpkg")
    with pytest.raises(FetchError) as e:
        make_fetcher(tmp_path, archive).fetch((loc,), "testpkg 1.0")
    assert "recipe pins " + "0" * 64 in str(e.value) and f"sha256 {sha(archive['orig'])}" in str(e.value)


def test_missing_version_is_reported(tmp_path, archive):
    loc = Location("debian", "testpkg_2.0.orig.tar.gz", "0" * 64, "test", debian="testpkg")
    with pytest.raises(FetchError, match="no version 2.0-\\* of source package testpkg"):
        make_fetcher(tmp_path, archive).fetch((loc,), "testpkg 2.0")


@pytest.mark.slow
def test_real_debian_archive_serves_the_default_musl(tmp_path):
    """Uses this machine's apt sources and Debian's real archive (network)."""
    from toolchain.sources import recipes
    musl = recipes.load().packages["musl"]
    v = musl.versions[musl.default]
    got = Fetcher(tmp_path / "dist", upstream=False, apt=Apt(tmp_path / "apt")).fetch(v.locations, "musl")
    assert got.location.kind == "debian"
