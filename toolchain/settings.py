"""User settings: `doit TASK name=value` on the command line, else TOOLCHAIN_<NAME> in the
environment, else the default. Validated before any task runs."""
from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ToolchainError
from .sources.recipes import PACKAGES, RECIPES_DIR, ROOT
from .sources.urls import url_problem

ENV_PREFIX = "TOOLCHAIN_"

# name: help; load() accepts these names (the help is not shown anywhere yet)
SETTINGS = {
    "out": "output folder (source trees, build trees, toolchains, state)",
    "distfiles": "folder of verified downloads, shared between clones and targets",
    "mirrors": "space- or comma-separated base URLs tried before upstream (flat: URL/FILE)",
    "jobs": "parallel make jobs",
    "offline": "1: never use the network; everything must be in distfiles",
    "upstream": "0: skip upstream URLs (e.g. where upstream sites are unreachable)",
    "debian": "0: do not use Debian's source archive through apt",
    "debian_suites": "Debian suites searched for source packages",
    "languages": "gcc languages, comma separated",
    "recipes": "folder of recipe YAML files (patches/ beside it); default: this project's",
    "cache": "toolchain cache: a folder, file://FOLDER, http(s)://BASE or oci://HOST/REPOSITORY; empty: none",
    "cache_push": "1: upload each toolchain built (all gates passed) to the cache",
    "cache_key": "secret key file (python -m toolchain keygen) that signs what is pushed",
    "cache_trust": "public keys (<name>:<base64>) whose signatures are trusted, or any",
    "pch": "0: compile gcc's own sources without precompiled headers (on by default; off with ccache=1)",
    "ccache": "1: compile the toolchain's own programs through ccache (CCACHE_DIR, else a folder in ~/.cache/musl-toolchain)",
}


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "musl-toolchain"


def _bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "yes", "true", "on"):
        return True
    if v in ("0", "no", "false", "off", ""):
        return False
    raise ToolchainError(f"setting {name}={value!r} is not a yes/no value", fix=f"write {name}=1 or {name}=0")


@dataclass(frozen=True)
class Settings:
    out: Path
    distfiles: Path
    mirrors: tuple[str, ...] = ()
    jobs: int = 2
    offline: bool = False
    upstream: bool = True
    debian: bool = True
    debian_suites: tuple[str, ...] = ("bookworm", "trixie", "forky", "sid")
    versions: dict[str, str] = field(default_factory=dict)
    recipes: Path = RECIPES_DIR
    languages: tuple[str, ...] = ("c", "c++")
    cache: str = ""
    cache_push: bool = False
    cache_key: Path | None = None
    cache_trust: str = ""
    pch: bool = True                 # gcc's own headers precompiled while gcc_core builds
    ccache: str = ""                 # the ccache program, when ccache=1
    ccache_dir: Path | None = None   # and the folder of its cache

    @property
    def state(self) -> Path:
        return self.out / "state"

    @property
    def sources(self) -> Path:
        return self.out / "src"


def load(cmdline: dict[str, str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Settings from doit's command-line variables and the environment."""
    cmdline = dict(cmdline or {})
    env = dict(os.environ if env is None else env)
    known = set(SETTINGS) | set(PACKAGES)
    for name in cmdline:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            raise ToolchainError(f"unknown setting {name!r} on the command line",
                                 fix=(f"did you mean {close[0]!r}? " if close else "")
                                 + "settings: " + ", ".join(sorted(known)))
    env_known = {ENV_PREFIX + n.upper() for n in SETTINGS} | {f"{ENV_PREFIX}VERSION_{p.upper()}" for p in PACKAGES}
    for name in env:
        if name.startswith(ENV_PREFIX) and name not in env_known:
            close = difflib.get_close_matches(name, env_known, n=1)
            raise ToolchainError(f"unknown environment setting {name}",
                                 fix=(f"did you mean {close[0]}? " if close else "") + "see README: Settings")

    def get(name: str, default: str) -> str:
        if name in cmdline:
            return cmdline[name]
        return env.get(ENV_PREFIX + name.upper(), default)

    jobs_text = get("jobs", str(os.cpu_count() or 2))
    if not jobs_text.isdigit() or int(jobs_text) < 1:
        raise ToolchainError(f"jobs={jobs_text!r} is not a positive number", fix="write e.g. jobs=2")
    mirrors = tuple(m for m in get("mirrors", "").replace(",", " ").split() if m)
    for m in mirrors:
        problem = url_problem(m, base=True)
        if problem:
            raise ToolchainError(f"mirror {m!r} {problem}", where="setting mirrors",
                                 fix="write the http(s) base URL of a flat folder, e.g. "
                                     "https://mirror.example/distfiles")
    versions = {}
    for pkg in PACKAGES:
        v = cmdline.get(pkg) or env.get(f"{ENV_PREFIX}VERSION_{pkg.upper()}")
        if v:
            versions[pkg] = v

    def shown(name: str) -> str:
        """How the user gave the setting, for errors: out= (or the default) or TOOLCHAIN_OUT=."""
        from_env = name not in cmdline and ENV_PREFIX + name.upper() in env
        return f"{ENV_PREFIX}{name.upper()}=" if from_env else f"{name}="

    offline = _bool("offline", get("offline", "0"))
    out = _folder("out", shown("out"), get("out", str(ROOT / "out"))).resolve()
    _writable("out", shown("out"), out)   # doit opens its dep file there at once
    distfiles = _folder("distfiles", shown("distfiles"),
                        get("distfiles", str(_cache_home() / "distfiles"))).absolute()
    if not offline:                        # offline, a read-only copy of distfiles is fine
        _writable("distfiles", shown("distfiles"), distfiles)
    return Settings(
        out=out,
        distfiles=distfiles,
        mirrors=mirrors,
        jobs=int(jobs_text),
        offline=offline,
        upstream=_bool("upstream", get("upstream", "1")),
        debian=_bool("debian", get("debian", "1")),
        debian_suites=tuple(get("debian_suites", "bookworm trixie forky sid").replace(",", " ").split()),
        versions=versions,
        recipes=Path(get("recipes", str(RECIPES_DIR))).expanduser().absolute(),
        languages=_languages(get("languages", "c,c++")),
        **_cache(get("cache", ""), _bool("cache_push", get("cache_push", "0")), get("cache_key", ""),
                 get("cache_trust", "")),
        pch=_bool("pch", get("pch", "1")),
        **_ccache(_bool("ccache", get("ccache", "0")), env),
    )


def _ccache(on: bool, env: dict[str, str]) -> dict:
    if not on:
        return {}
    from .build import ccache
    return {"ccache": ccache.program(),
            "ccache_dir": Path(env.get("CCACHE_DIR") or _cache_home() / "ccache").expanduser().absolute()}


def _cache(cache: str, push: bool, secret: str, trust: str) -> dict:
    """The cache settings, checked now: the backend named, the trusted keys well formed, the
    secret key readable when pushing."""
    if not cache.strip():
        if push:
            raise ToolchainError("cache_push=1 without cache=", fix="name the cache, e.g. cache=~/.cache/musl-toolchain/toolchains")
        return {}
    from .cache import backends, sign
    backends.backend(cache)
    sign.trusted_keys(trust)
    key_file = Path(secret).expanduser().absolute() if secret.strip() else None
    if key_file is not None:
        if not key_file.is_file():
            raise ToolchainError(f"cache_key={secret!r} is not a file", fix="name the file `python -m toolchain keygen` wrote")
        sign.sign(b"", key_file)          # readable and well formed, or one clear error now
    return {"cache": cache.strip(), "cache_push": push, "cache_key": key_file, "cache_trust": trust}


FOLDER_EXAMPLES = {"out": "./out", "distfiles": "~/.cache/musl-toolchain/distfiles"}


def _folder(name: str, shown: str, text: str) -> Path:
    """A folder setting: not empty (Path("") would be the current folder), not a file.
    `shown` is how the user gave it: `out=` or `TOOLCHAIN_OUT=`."""
    if not text.strip():
        raise ToolchainError(f"{shown}{text!r} is empty",
                             fix=f"name a folder, e.g. {name}={FOLDER_EXAMPLES[name]}, or drop the setting "
                                 "for the default")
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise ToolchainError(f"{shown}{text!r} is a file, not a folder",
                             fix=f"name a folder, e.g. {name}={FOLDER_EXAMPLES[name]}")
    blocker = _file_above(path)
    if blocker:
        raise ToolchainError(f"{shown}{text!r} cannot be a folder: {blocker} is a file",
                             fix=f"name a folder, e.g. {name}={FOLDER_EXAMPLES[name]}")
    return path


def _file_above(path: Path) -> Path | None:
    return next((p for p in path.absolute().parents if p.exists() and not p.is_dir()), None)


def _writable(name: str, shown: str, path: Path) -> None:
    """Create the folder (and its parents) and a file in it, so that a folder that cannot be
    written is one error now, not a failed task later; only that test file is removed."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ToolchainError(f"{shown}{str(path)!r} cannot be written: {e.strerror or e}",
                             fix=f"name a folder you can write, e.g. {name}={FOLDER_EXAMPLES[name]}") from None


def _languages(text: str) -> tuple[str, ...]:
    langs = tuple(dict.fromkeys(l for l in text.replace(" ", ",").split(",") if l))
    known = ("c", "c++", "fortran", "d", "go", "ada", "objc", "obj-c++", "rust", "m2", "cobol")
    for lang in langs:
        if lang not in known:
            raise ToolchainError(f"unknown gcc language {lang!r} in languages={text!r}",
                                 fix="choose from: " + ", ".join(known))
    if "c" not in langs:
        raise ToolchainError(f"languages={text!r} lacks c", fix="gcc always needs c, e.g. languages=c,c++")
    return langs
