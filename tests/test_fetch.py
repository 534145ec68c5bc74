"""Fetching against a real HTTP server on 127.0.0.1 that misbehaves on purpose."""
from __future__ import annotations

import socket
import threading

import pytest

from conftest import make_tar, sha
from toolchain.sources.download import Limits, download, part_path, retrying_session
from toolchain.errors import FetchError
from toolchain.sources.fetch import Fetcher
from toolchain.sources.recipes import Location

NAME = "pkg-1.0.tar.gz"


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


def test_500_twice_then_success_without_a_session_of_ours(server, tmp, payload):
    server.routes["/" + NAME] = [("status", 500), ("status", 500), ("file", payload)]
    got = download(f"{server.url}/{NAME}", tmp / NAME, sha(payload), backoff=0.0)
    assert got.read_bytes() == payload
    assert len(server.requests_for("/" + NAME)) == 3


@pytest.mark.parametrize("status", [429, 502, 504])
def test_busy_server_is_asked_again(server, tmp, payload, status):
    server.routes["/" + NAME] = [("status", status), ("file", payload)]
    got = fetcher(tmp).fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert len(server.requests_for("/" + NAME)) == 2


def finishes(work) -> object:
    """The result of work(), which must not hang (a long sleep would be a failure, not a wait)."""
    outcome: list = []

    def run():
        try:
            outcome.append((work(), None))
        except BaseException as e:  # handed to the test's thread
            outcome.append((None, e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "still waiting after 60 s"
    result, error = outcome[0]
    if error:
        raise error
    return result


@pytest.mark.parametrize("retry_after,cap,wait", [("1", 5.0, "1s"), ("3600", 0.2, "0.2s"),
                                                  ("Fri, 31 Dec 9999 23:59:59 GMT", 0.2, "0.2s")])
def test_retry_after_is_honoured_up_to_the_cap(server, tmp, payload, capsys, retry_after, cap, wait):
    server.routes["/" + NAME] = [("status", 503, {"Retry-After": retry_after}), ("file", payload)]
    f = fetcher(tmp, limits=Limits(max_wait=cap))
    got = finishes(lambda: f.fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg 1.0"))
    assert got.path.read_bytes() == payload
    assert len(server.requests_for("/" + NAME)) == 2
    assert f"/{NAME}: HTTP 503; retry 1/4 in {wait}\n" in capsys.readouterr().err


def test_retry_after_cap_bounds_the_computed_wait():
    retry = retrying_session(4, 1.0, Limits()).get_adapter("https://example.org/").max_retries
    assert retry.parse_retry_after("3600") == 60.0
    assert retry.parse_retry_after("5") == 5
    assert retry.parse_retry_after("soon") == 0  # unreadable: the backoff applies instead


def test_unreadable_retry_after_falls_back_to_the_backoff(server, tmp, payload):
    server.routes["/" + NAME] = [("status", 503, {"Retry-After": "soon"}), ("file", payload)]
    got = fetcher(tmp).fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert len(server.requests_for("/" + NAME)) == 2


def test_server_down_for_good_gives_one_error_with_status_and_attempts(server, tmp, payload):
    server.routes["/" + NAME] = [("status", 503)]
    with pytest.raises(FetchError, match=r"HTTP 503 Service Unavailable \(gave up after 3 attempts\)"):
        fetcher(tmp, retries=2).fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg 1.0")
    assert len(server.requests_for("/" + NAME)) == 3


def test_endless_error_body_is_not_read(server, tmp, payload):
    server.routes["/" + NAME] = [("endless", "close", 503), ("file", payload)]
    f = fetcher(tmp)
    got = finishes(lambda: f.fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg 1.0"))
    assert got.path.read_bytes() == payload


def test_connection_dropped_before_the_answer_is_retried(server, tmp, payload):
    server.routes["/" + NAME] = [("raw", b""), ("file", payload)]
    got = fetcher(tmp).fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert len(server.requests_for("/" + NAME)) == 2


def test_refused_connection_is_retried_then_named(tmp, payload):
    with socket.socket() as s:  # a port that was just free: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(FetchError, match=r"cannot connect \(gave up after 3 attempts\)"):
        fetcher(tmp, retries=2).fetch((url_loc(f"http://127.0.0.1:{port}/{NAME}", payload),), "pkg 1.0")


def test_tls_failure_is_not_retried(server, tmp, payload, capsys):
    server.routes["/" + NAME] = [("file", payload)]
    url = server.url.replace("http://", "https://") + "/" + NAME  # TLS to a plain HTTP server
    with pytest.raises(FetchError, match="TLS failed"):
        fetcher(tmp).fetch((url_loc(url, payload),), "pkg 1.0")
    assert "; retry " not in capsys.readouterr().err


def test_connection_cut_mid_file_resumes_with_range(server, tmp, payload):
    server.routes["/pkg-1.0.tar.gz"] = [("cut", payload, 300_000), ("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    ranges = server.requests_for("/pkg-1.0.tar.gz")
    assert ranges[0] is None
    assert ranges[1] is not None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    assert int(ranges[1][6:].rstrip("-")) > 0


def test_cuts_are_resumed_a_bounded_number_of_times(server, tmp, payload):
    server.routes["/" + NAME] = [("cut", payload, 1000)]
    with pytest.raises(FetchError, match=r"connection (lost|closed) after \d+ .*\(gave up after 2 resumes\)"):
        fetcher(tmp, retries=2).fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg 1.0")
    assert len(server.requests_for("/" + NAME)) == 3


def earlier_part(tmp, url: str, data: bytes) -> None:
    """What an earlier, interrupted run of the same URL left behind."""
    (tmp / "dist").mkdir(exist_ok=True)
    part_path(tmp / "dist" / NAME, url).write_bytes(data)


def test_partial_file_from_an_earlier_run_resumes(server, tmp, payload):
    earlier_part(tmp, server.url + "/pkg-1.0.tar.gz", payload[:123_456])
    server.routes["/pkg-1.0.tar.gz"] = [("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert server.requests_for("/pkg-1.0.tar.gz") == ["bytes=123456-"]
    assert leftovers(tmp) == [NAME]


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


def test_bad_distfiles_copy_is_replaced_from_the_network(server, tmp, payload, capsys):
    (tmp / "dist").mkdir()
    (tmp / "dist" / "pkg-1.0.tar.gz").write_bytes(b"old garbage")
    server.routes["/pkg-1.0.tar.gz"] = [("file", payload)]
    got = fetcher(tmp).fetch((url_loc(server.url + "/pkg-1.0.tar.gz", payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    # it may be the user's own file: moved aside, never deleted
    assert (tmp / "dist" / "pkg-1.0.tar.gz.rejected").read_bytes() == b"old garbage"
    assert "moved aside to pkg-1.0.tar.gz.rejected" in capsys.readouterr().err


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


# --- a partial download belongs to its URL ---------------------------------------------------

def test_part_left_by_a_mirror_is_never_resumed_from_upstream(server, tmp, payload):
    wrong = bytes(reversed(payload))
    server.routes["/mirror/pkg-1.0.tar.gz"] = [("cut", wrong, 300_000), ("status", 404)]
    server.routes["/up/pkg-1.0.tar.gz"] = [("status", 503), ("file", payload)]
    loc = url_loc(server.url + "/up/pkg-1.0.tar.gz", payload)
    # first run: the mirror cuts off after wrong bytes, upstream is down
    with pytest.raises(FetchError, match=r"up/pkg-1.0.tar.gz: HTTP 503 Service Unavailable"):
        fetcher(tmp, mirrors=(server.url + "/mirror",), retries=0).fetch((loc,), "pkg 1.0")
    got = fetcher(tmp, mirrors=(server.url + "/mirror",), retries=0).fetch((loc,), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert server.requests_for("/up/pkg-1.0.tar.gz") == [None, None]  # never asked to continue the mirror's part
    assert leftovers(tmp) == [NAME]  # the mirror's part is gone with the success


def test_resumed_part_that_fails_verification_is_fetched_again_from_zero(server, tmp, payload):
    url = server.url + "/pkg-1.0.tar.gz"
    earlier_part(tmp, url, b"x" * 1000)  # e.g. the server re-rolled the file since
    server.routes["/pkg-1.0.tar.gz"] = [("file", payload)]
    got = fetcher(tmp).fetch((url_loc(url, payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert server.requests_for("/pkg-1.0.tar.gz") == ["bytes=1000-", None]


def test_206_from_the_wrong_offset_starts_over(server, tmp, payload):
    url = server.url + "/pkg-1.0.tar.gz"
    earlier_part(tmp, url, payload[:123_456])
    server.routes["/pkg-1.0.tar.gz"] = [("badrange", payload, 0)]
    got = fetcher(tmp).fetch((url_loc(url, payload),), "pkg 1.0")
    assert got.path.read_bytes() == payload
    assert server.requests_for("/pkg-1.0.tar.gz") == ["bytes=123456-", None]


# --- downloads are bounded in size ----------------------------------------------------------

def two_locations(server, payload, first_plan, **first_kw):
    """A misbehaving location /a/ and a good one /b/, in that order."""
    server.routes["/a/" + NAME] = first_plan
    server.routes["/b/" + NAME] = [("file", payload)]
    return (url_loc(f"{server.url}/a/{NAME}", payload, **first_kw), url_loc(f"{server.url}/b/{NAME}", payload))


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_endless_body_stops_at_the_recipe_size(server, tmp, payload, framing, capsys):
    locs = two_locations(server, payload, [("endless", framing)], size=len(payload))
    got = fetcher(tmp).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/b/{NAME}"
    assert f"/a/{NAME}: the body grew past {len(payload)} bytes" in capsys.readouterr().err
    assert leftovers(tmp) == [NAME]


def test_endless_body_of_unknown_size_stops_at_the_cap(server, tmp, payload):
    server.routes["/" + NAME] = [("endless", "close")]
    with pytest.raises(FetchError, match="grew past 4194304 bytes"):
        fetcher(tmp, limits=Limits(max_size=4 << 20)).fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg")
    assert leftovers(tmp) == []  # no part of the junk is kept


def test_content_length_beyond_the_recipe_size_fails_before_the_body(server, tmp, payload, capsys):
    locs = two_locations(server, payload, [("claim", payload, 500 << 20)], size=len(payload))
    got = fetcher(tmp).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/b/{NAME}"
    assert f"announces {500 << 20} bytes, but the file has {len(payload)}" in capsys.readouterr().err
    assert server.requests_for("/a/" + NAME) == [None]  # not retried
    assert leftovers(tmp) == [NAME]


def test_size_of_another_location_with_the_same_bytes_bounds_a_mirror(server, tmp, payload, capsys):
    server.routes["/mirror/" + NAME] = [("claim", payload, 10**9)]
    server.routes["/up/" + NAME] = [("file", payload)]
    loc = url_loc(f"{server.url}/up/{NAME}", payload, size=len(payload))
    got = fetcher(tmp, mirrors=(server.url + "/mirror",)).fetch((loc,), "pkg 1.0")
    assert got.origin == f"{server.url}/up/{NAME}"
    assert f"announces {10**9} bytes, but the file has {len(payload)}" in capsys.readouterr().err


def test_content_length_beyond_the_cap_fails_for_a_file_of_unknown_size(server, tmp, payload):
    server.routes["/" + NAME] = [("claim", payload, 5 << 30)]
    with pytest.raises(FetchError, match="announces 5368709120 bytes, more than the 2147483648"):
        fetcher(tmp).fetch((url_loc(f"{server.url}/{NAME}", payload),), "pkg")
    assert server.requests_for("/" + NAME) == [None]


# --- downloads are bounded in time ----------------------------------------------------------

def test_slow_drip_times_out_and_the_next_location_is_used(server, tmp, payload, capsys):
    locs = two_locations(server, payload, [("drip", payload, 1, 0.02)])
    got = fetcher(tmp, limits=Limits(low_speed=1000, low_speed_time=0.3)).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/b/{NAME}"
    err = capsys.readouterr().err
    assert "timed out: " in err and "slower than 1000 bytes/s" in err
    assert server.requests_for("/a/" + NAME) == [None]  # failed over, not retried


@pytest.mark.parametrize("head, drip", [
    # an endless chunk-size line: each read waits for its end, so only a watchdog sees the drip
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", b"0" * 60_000),
    # a header line that never ends: no body byte ever arrives, each read gets a byte in time
    (b"HTTP/1.1 200 OK\r\nX-Slow: ", b"a" * 60_000),
], ids=["chunk-size-line", "header-line"])
def test_a_drip_no_read_check_can_see_is_cut_by_the_watchdog(server, tmp, payload, capsys, head, drip):
    locs = two_locations(server, payload, [("rawdrip", head, drip, 1, 0.02)])
    got = fetcher(tmp, limits=Limits(low_speed=1000, low_speed_time=0.3)).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/b/{NAME}"
    assert "timed out: " in capsys.readouterr().err
    assert server.requests_for("/a/" + NAME) == [None]  # out of time: not retried either


def test_fast_drip_that_never_ends_hits_the_deadline(server, tmp, payload, capsys):
    locs = two_locations(server, payload, [("drip", payload, 4096, 0.01)])
    limits = Limits(low_speed=0, low_speed_time=0.2, min_deadline=0.5, deadline_rate=1 << 40)
    got = fetcher(tmp, limits=limits).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/b/{NAME}"
    assert "timed out: not done after 0.5s" in capsys.readouterr().err


def test_stall_after_the_headers_times_out_and_fails_over(server, tmp, payload, capsys):
    locs = two_locations(server, payload, [("stall", payload, 1000)])
    got = fetcher(tmp, timeout=0.3).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/b/{NAME}"
    assert "timed out: no data for 0.3s after 1000 bytes" in capsys.readouterr().err
    assert server.requests_for("/a/" + NAME) == [None]


# --- hostile answers give one clean message each -------------------------------------------

def test_gzip_labelled_tarball_is_saved_as_sent(server, tmp):
    tarball = make_tar({"hello.c": b"int main(void) { return 0; }\n" * 100})
    server.routes["/" + NAME] = [("gzip", tarball)]
    got = fetcher(tmp).fetch((url_loc(f"{server.url}/{NAME}", tarball),), "pkg 1.0")
    assert got.path.read_bytes() == tarball  # the pinned .tar.gz bytes, not the decoded .tar
    assert server.headers_for("/" + NAME)[0]["Accept-Encoding"] == "identity"


def chain(n: int) -> dict[str, str]:
    """/r/pkg-1.0.tar.gz -> /r/1 -> ... -> /r/n (which has the file: it must not be reached)."""
    hops = [f"/r/{NAME}"] + [f"/r/{i}" for i in range(1, n + 1)]
    return dict(zip(hops, hops[1:]))


BAD_REDIRECTS = {
    "file": ({f"/r/{NAME}": "file:///etc/passwd"}, "which has file://"),
    "ftp": ({f"/r/{NAME}": f"ftp://127.0.0.1/{NAME}"}, "which has ftp://"),
    "loop": ({f"/r/{NAME}": "/r/x", "/r/x": f"/r/{NAME}"}, "redirect loop at"),
    "too many": (chain(12), "more than 10 redirects"),
    "no location": ({f"/r/{NAME}": None}, "without a Location"),
    "garbage location": ({f"/r/{NAME}": "http://[::1"}, "cannot be parsed"),
    "control characters": ({f"/r/{NAME}": "http://x/\x7f"}, "control character"),
}


@pytest.mark.parametrize("case", BAD_REDIRECTS)
def test_bad_redirect_skips_the_location(server, tmp, payload, capsys, case):
    hops, message = BAD_REDIRECTS[case]
    for path, target in hops.items():
        server.routes[path] = [("redirect", target)]
    server.routes["/r/12"] = [("file", payload)]
    # the good location is reached through a relative redirect
    server.routes["/moved/" + NAME] = [("redirect", "../good/" + NAME, 301)]
    server.routes["/good/" + NAME] = [("file", payload)]
    locs = (url_loc(f"{server.url}/r/{NAME}", payload), url_loc(f"{server.url}/moved/{NAME}", payload))
    got = fetcher(tmp).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/moved/{NAME}" and got.path.read_bytes() == payload
    assert message in capsys.readouterr().err
    assert server.requests_for("/r/12") == []
    assert leftovers(tmp) == [NAME]


def test_invalid_header_in_the_answer_skips_the_location(server, tmp, payload, capsys):
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"
    locs = two_locations(server, payload, [("raw", answer)])
    got = fetcher(tmp).fetch(locs, "pkg 1.0")
    assert got.origin == f"{server.url}/b/{NAME}"
    assert "InvalidHeader" in capsys.readouterr().err
