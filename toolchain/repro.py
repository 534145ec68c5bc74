"""The reproducibility proof: build one target in two folders, compare the two tarballs.

full   two cold `doit toolchain:<target>` runs, in <dir>/a/out and <dir>/b/out (different
       paths, different source and build folders), sharing only the verified distfiles.
quick  (--from OUT) the musl, ncurses, libedit and rust_std stages, then package, run in both
       folders against copies of the toolchain built in OUT (copied to the two different
       paths, so the copies' relocatability is exercised too), with OUT's records of the other
       stages: the tarball is the one a full build with this code would make. Minutes instead
       of an hour.

It prints "identical" and the tarball's sha256, or the members that differ, with diffoscope's
account of the first few when diffoscope is installed. Exit status 0 only when identical.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from .sources import recipes as recipes_mod
from . import settings as settings_mod
from .build import context, executor, registry
from .build.stages.package import tarball_name
from .sources import store
from .sources.download import sha256_file
from .errors import ToolchainError

ROOT = Path(__file__).resolve().parent.parent
QUICK_STAGES = tuple(s.name for s in registry.STAGES if s.quick_repro)
DIFFOSCOPE_FILES = 3


def _settings(out: Path, distfiles: Path, extra: dict[str, str]) -> settings_mod.Settings:
    return settings_mod.load({**extra, "out": str(out), "distfiles": str(distfiles)})


def full_build(out: Path, target: str, distfiles: Path, extra: dict[str, str]) -> subprocess.Popen:
    args = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py"), f"toolchain:{target}",
            f"out={out}", f"distfiles={distfiles}", *(f"{k}={v}" for k, v in extra.items())]
    print("$", " ".join(args), flush=True)
    return subprocess.Popen(args, cwd=ROOT)


def _build(out: Path, name: str, distfiles: Path, extra: dict[str, str]) -> context.Build:
    """The toolchain `name` (`<target>` or `<target>@<host>`) built in `out`."""
    s = _settings(out, distfiles, extra)
    recipes = recipes_mod.load(s.recipes)
    target, host = recipes.builds()[name]
    return context.Build(s, target, recipes.select(s.versions), host)


def quick_build(out: Path, target: str, distfiles: Path, extra: dict[str, str], built: Path) -> Path:
    """Re-run QUICK_STAGES in `out` against a copy of the toolchain built in `built`."""
    b = _build(out, target, distfiles, extra)
    s, versions = b.settings, b.versions
    origin = _build(built, target, distfiles, extra)
    if not origin.stamp("gcc").is_file():
        raise ToolchainError(f"no finished gcc stage for {target}", where=str(built),
                             fix=f"build it first: doit toolchain:{target} out={built}")
    print(f"[repro] copying {origin.prefix} to {b.prefix}", flush=True)
    # cp -a keeps the hard links binutils and gcc install (shutil.copytree would not)
    b.prefix.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(origin.prefix), str(b.prefix)], check=True)
    # the records of the stages not re-run, and every input's fetch record: the package's
    # manifest lists them all, so the tarball can equal the one a full build makes
    for name in registry.BY_NAME:
        if name not in QUICK_STAGES and origin.stamp(name).is_file():
            b.stamp(name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin.stamp(name), b.stamp(name))
    # musl links against the libgcc.a of gcc's build folder (LIBCC), as in a full build
    libcc = Path("obj-gcc") / b.triple / "libgcc" / "libgcc.a"
    (b.work / libcc).parent.mkdir(parents=True)
    shutil.copy2(origin.work / libcc, b.work / libcc)
    read = {p for name in QUICK_STAGES for p in registry.BY_NAME[name].reads}
    for pkg in sorted(versions):
        store.fetch(s, versions[pkg])
        if pkg in read:
            store.prepare(s, versions[pkg])
    for name in QUICK_STAGES:
        executor.execute(b, name)
    return _tarball(b)


def _tarball(b: context.Build) -> Path:
    path = b.settings.out / "dist" / f"{tarball_name(b)}.tar.gz"
    if not path.is_file():
        raise ToolchainError("no tarball", where=str(path))
    return path


def _members(path: Path) -> dict[str, tuple]:
    """Each member's metadata and content hash."""
    result = {}
    with tarfile.open(path) as tar:
        for m in tar:
            digest = hashlib.sha256(tar.extractfile(m).read()).hexdigest() if m.isfile() else ""
            result[m.name] = (m.type, m.mode, m.uid, m.gid, m.uname, m.gname, m.mtime, m.linkname, digest)
    return result


def compare(a: Path, b: Path) -> list[str]:
    """The member names that differ between two tarballs ([] when the files are identical;
    ["(tarball bytes)"] when only the archive itself differs)."""
    if sha256_file(a) == sha256_file(b):
        return []
    ma, mb = _members(a), _members(b)
    differ = sorted(n for n in ma.keys() | mb.keys() if ma.get(n) != mb.get(n))
    return differ or ["(tarball bytes: same members, different archive encoding)"]


def explain(a: Path, b: Path, names: list[str]) -> None:
    """diffoscope on the first differing regular files, when it is installed."""
    diffoscope = shutil.which("diffoscope")
    if not diffoscope:
        print("[repro] install diffoscope (Debian: diffoscope-minimal) for a closer look")
        return
    with tempfile.TemporaryDirectory() as tmp, tarfile.open(a) as ta, tarfile.open(b) as tb:
        for name in names[:DIFFOSCOPE_FILES]:
            try:
                ia, ib = ta.getmember(name), tb.getmember(name)
            except KeyError:
                continue
            if not (ia.isfile() and ib.isfile()):
                continue
            pa, pb = Path(tmp, "a", Path(name).name), Path(tmp, "b", Path(name).name)
            for tar, info, dest in ((ta, ia, pa), (tb, ib, pb)):
                dest.parent.mkdir(exist_ok=True)
                dest.write_bytes(tar.extractfile(info).read())
            print(f"[repro] diffoscope {name}:", flush=True)
            r = subprocess.run([diffoscope, "--text", "-", "--max-text-report-size", "20000", str(pa), str(pb)],
                               capture_output=True, text=True)
            print(r.stdout[:20000])


def _wait(procs: list[subprocess.Popen]) -> list[int]:
    """Their exit codes; interrupted (Ctrl-C), the builds are stopped too, not left running."""
    try:
        return [p.wait() for p in procs]
    except BaseException:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        raise


def run(target: str, workdir: Path, distfiles: Path, extra: dict[str, str], built: Path | None,
        parallel: bool) -> int:
    dirs = [workdir / "a" / "out", workdir / "b-in-another-folder" / "out"]
    for d in dirs:
        if d.exists():
            raise ToolchainError("already exists", where=str(d), fix="give an empty or new --dir")
    if built is not None:
        tarballs = [quick_build(d, target, distfiles, extra, built) for d in dirs]
    else:
        if parallel:
            codes = _wait([full_build(d, target, distfiles, extra) for d in dirs])
        else:
            codes = [_wait([full_build(d, target, distfiles, extra)])[0] for d in dirs]
        if any(codes):
            raise ToolchainError(f"a build failed (exit {codes})", where=str(workdir))
        tarballs = [_tarball(_build(d, target, distfiles, extra)) for d in dirs]
    return report(*tarballs)


def report(a: Path, b: Path, b_is: str = "") -> int:
    """Print "identical" and the sha256, or the members that differ (diffoscope on the first);
    the exit status: 0 only when identical."""
    differ = compare(a, b)
    if not differ:
        print(f"identical: {a.name} sha256 {sha256_file(a)}\n  {a}\n  {b}{b_is}")
        return 0
    print(f"{len(differ)} members differ between\n  {a}\n  {b}{b_is}")
    for name in differ:
        print(f"  {name}")
    explain(a, b, differ)
    return 1


MANIFEST_LIMIT = 1 << 20


def manifest_of(tarball: Path) -> dict:
    """The toolchain manifest inside a toolchain tarball (<top>/musl-toolchain.json)."""
    import json
    try:
        with tarfile.open(tarball) as tar:
            for member in tar:
                parts = member.name.split("/")
                if len(parts) == 2 and parts[1] == "musl-toolchain.json" and member.isfile() \
                        and member.size <= MANIFEST_LIMIT:
                    return json.loads(tar.extractfile(member).read())
    except (OSError, tarfile.TarError, ValueError, EOFError) as e:
        raise ToolchainError(f"cannot read it as a toolchain tarball: {e}", where=str(tarball)) from None
    raise ToolchainError("has no <top>/musl-toolchain.json: not a toolchain tarball of this tool", where=str(tarball))


# the cache's settings are for fetching what is verified, never for the rebuild: a rebuild
# that restored the artifact from the cache would prove nothing
CACHE_SETTINGS = ("cache", "cache_push", "cache_key", "cache_trust")
KEY = re.compile(r"[0-9a-f]{64}")


def from_cache(key: str, workdir: Path, distfiles: Path, extra: dict[str, str]) -> Path:
    """The tarball cached under `key` in cache= (signed by a key in cache_trust=, its sha256
    checked), downloaded into workdir/artifact."""
    from .cache import artifact, backends, sign
    if not KEY.fullmatch(key):
        raise ToolchainError(f"--key {key[:80]!r} is not a toolchain key (64 hex digits)",
                             fix="`python -m toolchain key <target>` prints one; a release's artifact.json has it")
    if not extra.get("cache"):
        raise ToolchainError("--key needs cache=, the cache that holds it", fix="e.g. cache=oci://ghcr.io/<owner>/musl-toolchains")
    folder = workdir / "artifact"
    if folder.exists() or (workdir / "out").exists():
        raise ToolchainError("already exists", where=str(workdir), fix="give an empty or new --dir")
    folder.mkdir(parents=True)
    try:
        s = _settings(folder, distfiles, extra)     # out= here: the rebuild's own out must not exist yet
        tarball, art, signer = artifact.download(backends.backend(s.cache), key, sign.trusted_keys(s.cache_trust), folder)
    except ToolchainError:
        shutil.rmtree(folder)        # made above: nothing half-downloaded stays
        raise
    print(f"[verify] {key[:16]}...: {art['toolchain']}, {tarball.name} ({sign.described(signer)}, sha256 checked)",
          flush=True)
    return tarball


def verify(tarball: Path, workdir: Path, distfiles: Path, extra: dict[str, str], key: str = "") -> int:
    """Rebuild the toolchain a tarball says it is (target, host, versions: its manifest) in
    workdir, and compare: "identical", or the members that differ. With a key, the tarball
    is a cached artifact's, and the rebuild's key is compared with it too."""
    m = manifest_of(tarball)
    try:
        name = m["target"] + (f"@{m['host']['name']}" if m.get("host") else "")
        versions = {k: str(v) for k, v in m["versions"].items()}
    except (KeyError, TypeError, AttributeError):
        raise ToolchainError("its musl-toolchain.json lacks target or versions", where=str(tarball)) from None
    out = workdir / "out"
    if out.exists():
        raise ToolchainError("already exists", where=str(out), fix="give an empty or new --dir")
    extra = {**versions, **{k: v for k, v in extra.items() if k not in CACHE_SETTINGS}}
    print(f"[verify] {tarball.name}: rebuilding toolchain:{name} ({', '.join(f'{k} {v}' for k, v in versions.items())})",
          flush=True)
    if _wait([full_build(out, name, distfiles, extra)])[0]:
        raise ToolchainError("the rebuild failed", where=str(out))
    rebuilt = _build(out, name, distfiles, extra)
    status = report(tarball, _tarball(rebuilt), " (rebuilt)")
    if key:
        from .cache import key as key_mod
        again = key_mod.key(rebuilt)
        print("key: the same (same inputs)" if again == key else
              f"key: differs, the rebuild's is {again} (other inputs, e.g. another commit of this tool; "
              "`python -m toolchain key --inputs` lists them)")
    return status
