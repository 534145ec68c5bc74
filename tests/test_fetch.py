"""Fetching against a real HTTP server on 127.0.0.1 that misbehaves on purpose."""
from __future__ import annotations

import pytest

from conftest import sha
from toolchain.errors import FetchError
from toolchain.fetch import Fetcher
from toolchain.recipes import Location


def url_loc(url: str, data: bytes, **kw) -> Location:
    return Location("url", url.rsplit("/", 1)[-1], sha(data), "test", url=url, **kw)


def fetcher(tmp, **kw) -> Fetcher:
    kw.setdefault("backoff", 0.0)
    kw.setdefault("timeout", 5.0)
    return Fetcher(tmp / "dist", **kw)


def leftovers(tmp) -> list[str]:
    return sorted(p.name for p in (tmp / "dist").iterdir() if p.is_file())


def test_good_file_is_verified_and_renamed(server, tmp, payload):
    server.routes["/f/pkg-1.0.tar.gz"] = [("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/f/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path == tmp / "dist" / "pkg-1.0.tar.gz"
    assert got.path.read_bytes() == payload
    assert leftovers(tmp) == ["pkg-1.0.tar.gz"]  # no .part left behind


def test_corrupted_file_is_deleted_and_error_says_expected_got_and_where(server, tmp, payload):
    bad = bytearray(payload)
    bad[1000] ^= 0xFF
    server.routes["/pkg-1.0.tar.gz"] = [("file", bytes(bad))]
    with pytest.raises(FetchError) as e:
        fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    msg = str(e.value)
    assert f"expected: {sha(payload)}" in msg
    assert f"got:      {sha(bytes(bad))}" in msg
    assert server.url + "/pkg-1.0.tar.gz" in msg
    assert leftovers(tmp) == []


def test_truncated_file_fails_the_checksum(server, tmp, payload):
    server.routes["/pkg-1.0.tar.gz"] = [("file", payload[:5000])]
    with pytest.raises(FetchError, match="sha256 mismatch"):
        fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert leftovers(tmp) == []


def test_404_then_a_good_mirror(server, tmp, payload):
    server.routes["/good/pkg-1.0.tar.gz"] = [("file", payload)]
    f = fetcher(tmp, mirrors=(server.url + "/empty", server.url + "/good"))
    got = f.fetch((url_loc("http://127.0.0.1:9/upstream/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.origin == server.url + "/good/pkg-1.0.tar.gz"
    assert server.requests_for("/empty/pkg-1.0.tar.gz") == [None]  # asked once, 404, no retry


def test_500_twice_then_success_is_retried(server, tmp, payload):
    server.routes["/pkg-1.0.tar.gz"] = [("status", 500), ("status", 503), ("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert len(server.requests_for("/pkg-1.0.tar.gz")) == 3


def test_connection_cut_mid_file_resumes_with_range(server, tmp, payload):
    server.routes["/pkg-1.0.tar.gz"] = [("cut", payload, 300_000), ("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    ranges = server.requests_for("/pkg-1.0.tar.gz")
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert int(ranges[1][6:].rstrip("-")) > 0


def test_partial_file_from_an_earlier_run_resumes(server, tmp, payload):
    (tmp / "dist").mkdir()
    (tmp / "dist" / "pkg-1.0.tar.gz.part").write_bytes(payload[:123_456])
    server.routes["/pkg-1.0.tar.gz"] = [("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert server.requests_for("/pkg-1.0.tar.gz") == ["bytes=123456-"]


def test_html_error_page_with_200_is_refused_and_next_location_used(server, tmp, payload):
    server.routes["/login/pkg-1.0.tar.gz"] = [("html", "<!DOCTYPE html><html>Please log in</html>")]
    server.routes["/real/pkg-1.0.tar.gz"] = [("file", payload)]
    locs = (url_loc(server.url + "/login/pkg-1.0.tar.gz", payload),
            url_loc(server.url + "/real/pkg-1.0.tar.gz", payload))
    got = fetcher(tmp).fetch(locs, "pkg 1.0")
    assert got.origin.endswith("/real/pkg-1.0.tar.gz")


def test_html_page_disguised_as_binary_is_named_as_html(server, tmp, payload):
    server.routes["/pkg-1.0.tar.gz"] = [("disguised", "<html><body>404 Not Found</body></html>")]
    with pytest.raises(FetchError, match="HTML page"):
        fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert leftovers(tmp) == []


def test_all_locations_failing_lists_each_attempt(server, tmp, payload):
    locs = (url_loc(server.url + "/a/pkg-1.0.tar.gz", payload), url_loc(server.url + "/b/pkg-1.0.tar.gz", payload))
    with pytest.raises(FetchError) as e:
        fetcher(tmp).fetch(locs, "pkg 1.0")
    assert "/a/pkg-1.0.tar.gz: " in str(e.value) and "/b/pkg-1.0.tar.gz: " in str(e.value)
    assert "HTTP 404" in str(e.value)


def test_distfiles_copy_is_used_without_network(server, tmp, payload):
    (tmp / "dist").mkdir()
    (tmp / "dist" / "pkg-1.0.tar.gz").write_bytes(payload)
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.origin.startswith("distfiles")
    assert server.log == []


def test_bad_distfiles_copy_is_replaced_from_the_network(server, tmp, payload):
    (tmp / "dist").mkdir()
    (tmp / "dist" / "pkg-1.0.tar.gz").write_bytes(b"old garbage")
    server.routes["/pkg-1.0.tar.gz"] = [("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload


def test_offline_names_the_missing_file_and_touches_no_network(server, tmp, payload):
    server.routes["/pkg-1.0.tar.gz"] = [("file", payload)]
    with pytest.raises(FetchError) as e:
        fetcher(tmp, offline=True, mirrors=(server.url,)).fetch(
            (url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert "pkg-1.0.tar.gz" in str(e.value) and "offline" in str(e.value)
    assert str(tmp / "dist") in str(e.value)
    assert server.log == []


def test_unresolvable_host_fails_fast_without_retries(tmp, payload):
    loc = url_loc("http://no-such-host.invalid/pkg-1.0.tar.gz", payload)
    with pytest.raises(FetchError, match="cannot resolve"):
        fetcher(tmp, backoff=30.0).fetch((loc,), "pkg 1.0")  # a retry would sleep 30 s


def test_mismatch_at_one_location_is_reported_even_when_the_next_works(server, tmp, payload, capsys):
    server.routes["/mirror/pkg-1.0.tar.gz"] = [("file", b"stale copy")]
    server.routes["/upstream/pkg-1.0.tar.gz"] = [("file", payload)]
    got = fetcher(tmp, mirrors=(server.url + "/mirror",)).fetch(
        (url_loc(server.url + "/upstream/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    err = capsys.readouterr().err
    assert f"expected: {sha(payload)}" in err and f"got:      {sha(b'stale copy')}" in err
    assert "/mirror/pkg-1.0.tar.gz" in err
