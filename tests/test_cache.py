"""The toolchain cache with a tiny fake toolchain (a real tarball of a few files made by the
package stage's own code): a folder and a real HTTP server on 127.0.0.1 that takes PUT;
miss, push, hit in a second out folder; every kind of damage refused with nothing left."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from test_key import build, fetched, no_rustc  # noqa: F401 - no_rustc is an autouse fixture
from toolchain.build.stages import package
from toolchain.cache import artifact, backends, flow, sign


def fake_toolchain(out: Path, name: str = "aarch64"):
    """A prefix with a 'gcc', the env file and the sha256 list, packaged into out/dist as the
    package stage does; returns its Build."""
    fetched(out)
    b = build(out, name)
    (b.prefix / "bin").mkdir(parents=True)
    gcc = Path(b.tool("gcc"))
    gcc.write_text("#!/bin/sh\necho fake gcc\n")
    gcc.chmod(0o755)
    (b.sysroot / "lib").mkdir(parents=True)
    (b.sysroot / "lib" / "libc.a").write_bytes(b"!<arch>\n")
    (b.sysroot / "usr").symlink_to(".")
    (b.prefix / package.ENV_FILE).write_text(package.ENV_TEMPLATE.format(triple=b.triple, up="."))
    (b.prefix / package.SUMS).write_text(package.file_sums(b.prefix))
    dest, manifest = artifact.dist_files(b)
    package.tarball(b.prefix, dest, dest.name.removesuffix(".tar.gz"), 0)
    manifest.write_text(json.dumps({"target": b.target.name, "triple": b.triple}))
    return b


@pytest.fixture
def keys(tmp_path):
    pub = sign.keygen("ci", tmp_path / "keys" / "ci.key")
    return tmp_path / "keys" / "ci.key", [pub]


def restored_files(b) -> dict[str, bytes]:
    return {str(p.relative_to(b.prefix)): p.read_bytes() for p in b.prefix.rglob("*") if p.is_file()}


def nothing_left(b) -> bool:
    return not b.prefix.exists() and not list((b.settings.out / "toolchains").glob(".restore-*"))


@pytest.mark.parametrize("kind", ["folder", "http"])
def test_miss_push_then_hit_in_another_out_folder(tmp_path, keys, server, kind):
    be = backends.Folder(tmp_path / "cache") if kind == "folder" else backends.Http(f"{server.url}/tc")
    secret, trusted = keys
    built = fake_toolchain(tmp_path / "a")
    fetched(tmp_path / "b")
    fresh = build(tmp_path / "b", "aarch64")
    assert artifact.restore(fresh, be, trusted) is None                     # a miss
    key = artifact.publish(built, be, secret)
    record = artifact.restore(fresh, be, trusted)
    assert record["key"] == key and record["signed_by"] == "ci" and record["files"] == 3
    assert restored_files(fresh) == restored_files(built)
    assert (fresh.prefix / fresh.triple / "usr").readlink() == Path(".")
    tarball, manifest = artifact.dist_files(fresh)
    assert tarball.read_bytes() == artifact.dist_files(built)[0].read_bytes() and manifest.is_file()
    assert flow.restored(fresh) and not list((tmp_path / "b" / "toolchains").glob(".restore-*"))
    # both out folders keep the signed artifact.json beside the tarball (a release ships them)
    for b in (built, fresh):
        art, sig = artifact.provenance_files(b)
        assert json.loads(art.read_bytes())["key"] == key
        assert sign.verify(art.read_bytes(), sig.read_text().splitlines(), trusted, where="dist") == "ci"


def test_a_new_tarball_drops_the_artifact_json_of_the_old_one(tmp_path, keys):
    secret, _ = keys
    built = fake_toolchain(tmp_path / "a")
    artifact.publish(built, backends.Folder(tmp_path / "cache"), secret)
    assert all(f.is_file() for f in artifact.provenance_files(built))
    (built.prefix / package.MANIFEST).unlink(missing_ok=True)
    package.package(built, {"stages": {}})
    assert not any(f.exists() for f in artifact.provenance_files(built))


def pushed(tmp_path, secret):
    """A fake toolchain built in a/ and pushed to a folder cache: (backend, key)."""
    be = backends.Folder(tmp_path / "cache")
    return be, artifact.publish(fake_toolchain(tmp_path / "a"), be, secret)


def test_damage_is_refused_and_leaves_nothing(tmp_path, keys):
    secret, trusted = keys
    be, key = pushed(tmp_path, secret)
    fetched(tmp_path / "b")
    fresh = build(tmp_path / "b", "aarch64")
    blob = tmp_path / "cache" / key[:2] / key / artifact.TARBALL
    good = blob.read_bytes()
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))                     # one bit of the tarball
    with pytest.raises(backends.CacheError, match="sha256"):
        artifact.restore(fresh, be, trusted)
    assert nothing_left(fresh)
    blob.write_bytes(good[: len(good) // 2])                                # truncated
    with pytest.raises(backends.CacheError, match="bytes, its artifact.json says"):
        artifact.restore(fresh, be, trusted)
    assert nothing_left(fresh)
    blob.write_bytes(good)
    meta = tmp_path / "cache" / key[:2] / key / artifact.ARTIFACT
    signed = meta.read_bytes()
    meta.write_bytes(signed.replace(b'"triple"', b'"triple" ', 1))          # changed after signing
    with pytest.raises(sign.SignatureError, match="does not match"):
        artifact.restore(fresh, be, trusted)
    meta.write_bytes(signed)
    other = sign.keygen("other", tmp_path / "other.key")
    with pytest.raises(sign.SignatureError, match="none of which cache_trust lists"):
        artifact.restore(fresh, be, [other])
    (meta.parent / artifact.SIGNATURES).unlink()
    with pytest.raises(sign.SignatureError, match="is not signed"):
        artifact.restore(fresh, be, trusted)
    assert nothing_left(fresh)
    assert artifact.restore(fresh, be, None)["signed_by"] == sign.ANY      # cache_trust=any


def test_files_that_differ_from_the_toolchains_own_list_are_refused(tmp_path, keys):
    """A signer's tarball is still checked file by file: a file changed after the list was
    written (or one added) is named."""
    secret, trusted = keys
    be = backends.Folder(tmp_path / "cache")
    built = fake_toolchain(tmp_path / "a")
    Path(built.tool("gcc")).write_text("#!/bin/sh\necho changed\n")
    dest, _ = artifact.dist_files(built)
    dest.unlink()
    package.tarball(built.prefix, dest, dest.name.removesuffix(".tar.gz"), 0)
    artifact.publish(built, be, secret)
    fetched(tmp_path / "b")
    fresh = build(tmp_path / "b", "aarch64")
    with pytest.raises(backends.CacheError, match="differs from the toolchain's own sha256 list"):
        artifact.restore(fresh, be, trusted)
    assert nothing_left(fresh)


def test_an_artifact_stored_under_another_key_is_refused(tmp_path, keys):
    secret, trusted = keys
    be, key = pushed(tmp_path, secret)
    fetched(tmp_path / "b")
    fetched(tmp_path / "b", sha="ef" * 32, only="musl")              # another musl: another key
    fresh = build(tmp_path / "b", "aarch64")
    other = flow.key_mod.key(fresh)
    assert other != key
    shutil.copytree(tmp_path / "cache" / key[:2] / key, tmp_path / "cache" / other[:2] / other)
    with pytest.raises(backends.CacheError, match="is for aarch64 with key"):
        artifact.restore(fresh, be, trusted)


def test_a_server_that_fails_or_is_down_is_one_message_and_a_build(tmp_path, keys, server, capsys):
    secret, trusted = keys
    built = fake_toolchain(tmp_path / "a")
    be = backends.Http(f"{server.url}/tc")
    key = artifact.publish(built, be, secret)
    server.routes[f"/tc/{key}/{artifact.ARTIFACT}"] = [("status", 500)]
    fetched(tmp_path / "b")
    fresh = build(tmp_path / "b", "aarch64")
    with pytest.raises(backends.CacheError, match="answered 500"):
        artifact.restore(fresh, be, trusted)
    server.put_status = 403
    with pytest.raises(backends.CacheError, match="answered 403"):
        artifact.publish(built, be, secret)
    url = server.url
    server.close()
    settings = fresh.settings.__class__(**{**fresh.settings.__dict__, "cache": f"{url}/tc",
                                           "cache_trust": str(trusted[0])})
    down = fresh.__class__(settings, fresh.target, fresh.versions)
    assert flow.try_restore(down) is False
    out = capsys.readouterr().out
    assert "cache: not used:" in out and "cannot be read: ConnectionError" in out and "building instead" in out
    assert nothing_left(down)


def test_cache_settings_are_checked_before_any_work(tmp_path):
    from toolchain import settings
    from toolchain.errors import ToolchainError
    base = {"out": str(tmp_path / "out"), "distfiles": str(tmp_path / "d")}
    for extra, match in (({"cache": "ftp://x/y"}, "ftp:// is not a cache"),
                         ({"cache": "http://"}, "the URL"),
                         ({"cache_push": "1"}, "cache_push=1 without cache="),
                         ({"cache": str(tmp_path / "c"), "cache_key": str(tmp_path / "none")}, "is not a file"),
                         ({"cache": str(tmp_path / "c"), "cache_trust": "ci:abc"}, "not base64|bytes")):
        with pytest.raises(ToolchainError, match=match):
            settings.load({**base, **extra}, env={})
    s = settings.load({**base, "cache": f"file://{tmp_path}/c", "cache_trust": "any"}, env={})
    assert isinstance(backends.backend(s.cache), backends.Folder) and sign.trusted_keys(s.cache_trust) is None
    assert os.path.basename(str(backends.backend(s.cache))) == "c"


def test_push_command_uploads_a_built_toolchain_only(tmp_path, keys):
    import subprocess
    import sys
    secret, trusted = keys
    built = fake_toolchain(tmp_path / "a")
    run = lambda *a: subprocess.run([sys.executable, "-m", "toolchain", "push", "aarch64", f"out={tmp_path / 'a'}",
                                     *a], cwd=Path(__file__).parent.parent, capture_output=True, text=True,
                                    timeout=120, stdin=subprocess.DEVNULL)
    r = run(f"cache={tmp_path / 'cache'}", f"cache_key={secret}")
    assert r.returncode == 2 and "is not built" in r.stderr and "Traceback" not in r.stderr
    built.stamp("package").parent.mkdir(parents=True, exist_ok=True)
    built.stamp("package").write_text("{}")
    r = run(f"cache={tmp_path / 'cache'}", f"cache_key={secret}")
    assert r.returncode == 0 and "pushed to" in r.stdout, r.stderr
    key = r.stdout.split(" as ")[1].split()[0]
    assert (tmp_path / "cache" / key[:2] / key / artifact.SIGNATURES).is_file()
    r = run()
    assert r.returncode == 2 and "no cache= to push to" in r.stderr


def test_oci_registry_miss_push_hit_damage_and_down(tmp_path, keys, registry):
    host, storage, proc = registry
    secret, trusted = keys
    be = backends.backend(f"oci://{host}/musl/toolchains")
    assert isinstance(be, backends.Oci)
    built = fake_toolchain(tmp_path / "a")
    fetched(tmp_path / "b")
    fresh = build(tmp_path / "b", "aarch64")
    assert artifact.restore(fresh, be, trusted) is None                      # a miss
    key = artifact.publish(built, be, secret)
    record = artifact.restore(fresh, backends.backend(f"oci://{host}/musl/toolchains"), trusted)
    assert record["key"] == key and record["signed_by"] == "ci"
    assert restored_files(fresh) == restored_files(built)
    # one bit of the tarball's blob changed in the registry's storage: refused, nothing left
    shutil.rmtree(fresh.prefix)
    tar_digest = artifact.sha256_file(artifact.dist_files(built)[0])
    blob = next(storage.rglob(f"blobs/sha256/{tar_digest[:2]}/{tar_digest}/data"))
    good = blob.read_bytes()
    blob.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(backends.CacheError, match="not what its digest says"):
        artifact.restore(fresh, backends.backend(f"oci://{host}/musl/toolchains"), trusted)
    assert nothing_left(fresh)
    blob.write_bytes(good)
    proc.terminate()
    proc.wait(timeout=30)
    with pytest.raises(backends.CacheError, match="cannot be read"):
        artifact.restore(fresh, backends.backend(f"oci://{host}/musl/toolchains"), trusted)
    assert nothing_left(fresh)


def test_verify_reads_what_a_tarball_says_it_is_and_refuses_what_is_not_one(tmp_path):
    import subprocess
    import sys
    from toolchain import repro
    built = fake_toolchain(tmp_path / "a")
    (built.prefix / "musl-toolchain.json").write_text(json.dumps({"target": "aarch64", "versions": {"gcc": "16.2.0"}}))
    dest, _ = artifact.dist_files(built)
    dest.unlink()
    package.tarball(built.prefix, dest, dest.name.removesuffix(".tar.gz"), 0)
    assert repro.manifest_of(dest)["target"] == "aarch64"
    (tmp_path / "not.tar.gz").write_bytes(b"not a tarball")
    r = subprocess.run([sys.executable, "-m", "toolchain", "verify", str(tmp_path / "not.tar.gz"), "--dir",
                        str(tmp_path / "v"), "--distfiles", str(tmp_path / "d")], cwd=Path(__file__).parent.parent,
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and "cannot read it as a toolchain tarball" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "v").exists()


def test_with_a_cache_stages_depend_on_verified_files_not_unpacked_trees(tmp_path):
    """So that a restored toolchain unpacks no source: the stages that build make their trees
    themselves; the first stage, which computes the key, waits for every source's fetch."""
    from toolchain import tasks
    from toolchain.sources import store
    plain = tasks.Context({"out": str(tmp_path / "out")}, env={})
    cached = tasks.Context({"out": str(tmp_path / "out"), "cache": str(tmp_path / "c")}, env={})

    def deps(ctx, stage):
        return next(t for t in tasks.stage_tasks(ctx, stage) if t["name"] == "aarch64")["file_dep"]
    gcc = cached.versions["gcc"]
    assert str(store.tree_path(plain.settings, gcc) / store.MARKER) in deps(plain, "gcc_core")
    assert str(store.fetch_stamp(cached.settings, gcc)) in deps(cached, "gcc_core")
    assert not any(d.endswith(store.MARKER) for d in deps(cached, "gcc_core"))
    assert all(p.path is None or str(p.path) in deps(cached, "gcc_core") for p in gcc.patches)
    first = deps(cached, "linux_headers")
    assert all(str(store.fetch_stamp(cached.settings, v)) in first for v in cached.versions.values())


def test_with_a_cache_no_stage_builds_before_the_first_stage_looked_the_toolchain_up(tmp_path):
    """binutils reads no kernel header, so without this order doit ran it (six minutes of
    build) before linux_headers, the first stage, had restored the toolchain (found by the
    slow registry test)."""
    from toolchain import tasks
    from toolchain.build import registry
    plain = tasks.Context({"out": str(tmp_path / "out")}, env={})
    cached = tasks.Context({"out": str(tmp_path / "out"), "cache": str(tmp_path / "c")}, env={})
    for kind_name in ("aarch64", "aarch64@portable-aarch64"):
        b = next(b for b in tasks._builds(cached) if b.name == kind_name)
        first, *rest = [s.name for s in registry.stages_of(b.kind)]
        for stage in rest:
            [with_cache] = [t for t in tasks.stage_tasks(cached, stage) if t["name"] == kind_name]
            [without] = [t for t in tasks.stage_tasks(plain, stage) if t["name"] == kind_name]
            looked_up = f"{first}:{kind_name}"
            order = with_cache["task_dep"]
            assert order[0] == looked_up and len(set(order)) == len(order)
            assert (looked_up in without["task_dep"]) == (first in registry.after(stage, b.kind))
        [t] = [t for t in tasks.stage_tasks(cached, first) if t["name"] == kind_name]
        assert not any(d.endswith(f":{kind_name}") for d in t["task_dep"])   # no stage of its own


def test_verify_takes_a_signed_artifact_from_the_cache_and_rebuilds_without_it(tmp_path, keys, monkeypatch):
    """`verify --key K cache=...`: the tarball comes from the cache only if signed by a
    trusted key, with its sha256 checked; the rebuild never sees the cache settings (a rebuild
    that restored the artifact would prove nothing)."""
    from toolchain import repro
    from toolchain.errors import ToolchainError
    secret, trusted = keys
    built = fake_toolchain(tmp_path / "a")
    (built.prefix / "musl-toolchain.json").write_text(json.dumps({"target": "aarch64", "versions": {"gcc": "16.2.0"}}))
    dest, _ = artifact.dist_files(built)
    dest.unlink()
    package.tarball(built.prefix, dest, dest.name.removesuffix(".tar.gz"), 0)
    cache = tmp_path / "cache"
    key = artifact.publish(built, backends.Folder(cache), secret)
    settings = {"cache": str(cache), "cache_trust": str(trusted[0]), "cache_push": "1", "jobs": "2"}

    other = str(sign.keygen("other", tmp_path / "other.key"))
    with pytest.raises(sign.SignatureError):
        repro.from_cache(key, tmp_path / "untrusted", tmp_path / "d", {**settings, "cache_trust": other})
    assert not (tmp_path / "untrusted" / "artifact").exists()          # nothing half-fetched stays
    for bad, why in (("../" + key[3:], "not a toolchain key"), ("0" * 64, "has no toolchain under key")):
        with pytest.raises(ToolchainError, match=why):
            repro.from_cache(bad, tmp_path / "bad", tmp_path / "d", settings)

    tarball = repro.from_cache(key, tmp_path / "v", tmp_path / "d", settings)
    assert tarball.read_bytes() == dest.read_bytes()
    assert json.loads((tarball.parent / (tarball.name + ".artifact.json")).read_text())["key"] == key

    seen = {}

    def rebuild(out, name, distfiles, extra):
        seen.update(extra, name=name)
        return subprocess.Popen(["false"])
    import subprocess
    monkeypatch.setattr(repro, "full_build", rebuild)
    with pytest.raises(ToolchainError, match="the rebuild failed"):
        repro.verify(tarball, tmp_path / "v", tmp_path / "d", settings, key)
    assert seen["name"] == "aarch64" and seen["jobs"] == "2" and seen["gcc"] == "16.2.0"
    assert not set(repro.CACHE_SETTINGS) & set(seen)


def test_verify_key_on_the_command_line_reads_its_settings(tmp_path):
    """argparse hands verify's first NAME=VALUE to the tarball argument when --key is given:
    it must still be a setting (a cache= that is lost would be 'needs cache=')."""
    import subprocess
    import sys
    (tmp_path / "cache").mkdir()
    r = subprocess.run([sys.executable, "-m", "toolchain", "verify", "--key", "0" * 64, f"cache={tmp_path / 'cache'}",
                        "cache_trust=any", "--dir", str(tmp_path / "v"), "--distfiles", str(tmp_path / "d")],
                       cwd=Path(__file__).parent.parent, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and f"has no toolchain under key {'0' * 64}" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "v" / "artifact").exists()
