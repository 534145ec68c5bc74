"""Load and validate recipes/*.yaml: one file per upstream package, plus targets.yaml.

Validation happens at load time, before any work, and every problem is reported as
`file:line: what` with the fix, so a typo in a recipe never surfaces as a build failure.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from ..errors import RecipeError
from .urls import url_problem

ROOT = Path(__file__).resolve().parents[2]   # the checkout: toolchain/sources/recipes.py
RECIPES_DIR = ROOT / "recipes"

# The packages a toolchain is made of; each has recipes/<name>.yaml.
PACKAGES = ("linux", "binutils", "gcc", "gmp", "mpfr", "mpc", "musl", "ncurses", "libedit")

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
PATCH_NAME_RE = re.compile(r"^\d{4}-[A-Za-z0-9._+-]+\.patch$")
CVE_RE = re.compile(r"^CVE-\d{4}-\d{4,}$")
VARIANTS = ("dfsg",)


# --- YAML with line numbers ------------------------------------------------------------

class _Map(dict):
    """A mapping that remembers the line of itself and of each key (1-based)."""

    line = 0
    key_lines: dict


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    result = _Map()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if key in result:
            raise RecipeError(f"duplicate key {key!r}", where=f"{node.start_mark.name}:{line}",
                              fix="keep one of the two entries")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = line
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


def _read_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return yaml.load(f, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except UnicodeDecodeError:
        data = path.read_bytes()   # the error's offset is into one chunk: decode the whole file
        start = _first_non_utf8(data)
        line = data[:start].count(b"\n") + 1
        raise RecipeError(f"not UTF-8: byte 0x{data[start]:02x} at offset {start}",
                          where=f"{_rel(path)}:{line}",
                          fix="save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`), or write "
                              "that character in plain ASCII") from None
    except yaml.reader.ReaderError as e:   # e.g. a control character; it gives a character offset
        text = path.read_text(encoding="utf-8", errors="replace")
        line = text[:e.position].count("\n") + 1
        escape = f"\\x{e.character:02x}" if e.character < 0x100 else f"\\u{e.character:04x}"
        raise RecipeError(f"not valid YAML: character U+{e.character:04X} is not allowed in YAML",
                          where=f"{_rel(path)}:{line}",
                          fix=f"delete it, or write it as the escape {escape} inside double quotes") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 0
        raise RecipeError(f"not valid YAML: {e.problem or e.context}", where=f"{_rel(path)}:{line}",
                          fix="check indentation and quoting on that line") from None
    except yaml.YAMLError as e:
        raise RecipeError(f"not valid YAML: {e}", where=_rel(path)) from None
    except OSError as e:
        raise RecipeError(f"cannot read recipe: {e.strerror}", where=_rel(path)) from None


def _first_non_utf8(data: bytes) -> int:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start
    return 0


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --- schema checking ---------------------------------------------------------------------

class _Checker:
    """Checks one mapping against allowed/required fields and reports file:line errors."""

    def __init__(self, path: Path):
        self.path = path

    def where(self, m: Any, key: str | None = None) -> str:
        line = 0
        if isinstance(m, _Map):
            line = m.key_lines.get(key, m.line) if key is not None else m.line
        return f"{_rel(self.path)}:{line}"

    def fields(self, m: Any, what: str, required: dict[str, type | tuple],
               optional: dict[str, type | tuple] | None = None, *, hint: str = "") -> None:
        optional = optional or {}
        if not isinstance(m, dict):
            raise RecipeError(f"{what} must be a mapping, not {type(m).__name__}",
                              where=self.where(m), fix=hint or "write it as `key: value` lines")
        allowed = {**required, **optional}
        for key in m:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                fix = f"did you mean {close[0]!r}? " if close else ""
                raise RecipeError(f"unknown field {key!r} in {what}", where=self.where(m, key),
                                  fix=fix + "allowed fields: " + ", ".join(allowed))
        for key, typ in required.items():
            if key not in m or m[key] is None or m[key] == "":
                raise RecipeError(f"{what} has no {key!r}", where=self.where(m),
                                  fix=f"add `{key}: ...`" + (f" ({hint})" if hint else ""))
        for key, typ in allowed.items():
            if key in m and m[key] is not None and not isinstance(m[key], typ):
                names = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
                fix = "quote it, e.g. \"2.46\"" if isinstance(m[key], (float, int)) and typ is str \
                    else f"write a {names}"
                raise RecipeError(f"{what} field {key!r} is a {type(m[key]).__name__}, "
                                  f"expected {names}", where=self.where(m, key), fix=fix)

    def sha256(self, m: _Map, key: str = "sha256") -> str:
        value = m[key]
        if not SHA256_RE.match(value):
            raise RecipeError(f"{key} {value!r} is not a sha256 (64 lowercase hex digits)",
                              where=self.where(m, key),
                              fix="paste the full hex digest printed by `sha256sum FILE`")
        return value


# --- the model -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Location:
    """One place a file can come from, with the sha256 of exactly the bytes it yields."""

    kind: str                # "url" (upstream or its mirror) or "debian" (Debian's source archive)
    file: str                # file name in the distfiles folder (for members: the outer file)
    sha256: str              # of the file, or of `member` when that is set
    hash_from: str           # where that hash came from
    url: str = ""
    debian: str = ""         # Debian source package name
    member: str = ""         # path of the wanted file inside the outer archive
    variant: str = ""        # e.g. "dfsg": the bytes differ from upstream; variant patches apply
    where: str = ""
    size: int = 0            # bytes of the file (of `member` when set), bounding its download; 0: unknown

    @property
    def stored_name(self) -> str:
        """The distfiles name of the bytes this location yields (the member's, for members)."""
        return self.member.rsplit("/", 1)[-1] if self.member else self.file

    @property
    def debian_upstream_version(self) -> str:
        """Upstream part of the Debian version this file belongs to (`musl_1.2.5-*.debian...`)."""
        rest = self.file[len(self.debian) + 1:]
        m = re.match(r"^(.+?)(?:\.orig(?:-[A-Za-z0-9-]+)?\.tar\.\w+|-[^-]+\.debian\.tar\.\w+)$", rest)
        return m.group(1) if m else ""

    def describe(self) -> str:
        if self.kind == "url":
            return self.url
        inner = f" member {self.member}" if self.member else ""
        return f"Debian source package {self.debian}: {self.file}{inner}"


@dataclass(frozen=True)
class Patch:
    file: str
    why: str
    upstream: str
    cves: tuple[str, ...] = ()
    only_for: str = ""                      # a location variant, e.g. "dfsg"
    locations: tuple[Location, ...] = ()    # remote patch; empty for a local file
    path: Path | None = None                # local file: patches/<pkg>/<version>/<file>, or
                                            # patches/<pkg>/<file> when shared by versions
    where: str = ""

    @property
    def remote(self) -> bool:
        return bool(self.locations)


@dataclass(frozen=True)
class Version:
    package: str
    version: str
    locations: tuple[Location, ...]
    patches: tuple[Patch, ...]
    recipe: Path
    where: str = ""
    extract: tuple[str, ...] = ()   # only these paths (globs below the top folder); () = everything

    @property
    def key(self) -> str:
        return f"{self.package}-{self.version}"

    def patches_for(self, variant: str) -> list[Patch]:
        """Patches in name order that apply to a source of this variant."""
        return sorted((p for p in self.patches if p.only_for in ("", variant)), key=lambda p: p.file)


@dataclass(frozen=True)
class Package:
    name: str
    homepage: str
    default: str
    versions: dict[str, Version]
    recipe: Path

    def version(self, wanted: str, *, source: str = "") -> Version:
        if wanted not in self.versions:
            raise RecipeError(f"{self.name} version {wanted!r} is not in {_rel(self.recipe)}",
                              where=source or _rel(self.recipe),
                              fix="choose one of: " + ", ".join(self.versions)
                              + f" (or add {wanted} with its sha256 to the recipe)")
        return self.versions[wanted]


@dataclass(frozen=True)
class Target:
    """One row of recipes/targets.yaml: every fact about a target is data here, not code."""

    name: str
    triple: str
    gcc_configure: tuple[str, ...]
    rust_target: str     # "" when Rust has no std for it: the Rust stages are skipped
    qemu: str            # qemu-user's name for the machine (qemu-<this>-static), used unless it is the build machine's
    elf_class: int       # 32 or 64
    elf_machine: str     # pyelftools e_machine name, e.g. EM_AARCH64
    float_abi: str       # from e_flags where the machine has it (ARM, RISC-V, LoongArch); "" otherwise
    where: str = ""
    endian: str = "little"
    eabi: int = 0        # ARM EABI version in e_flags; 0: not checked
    kernel_arch: str = ""    # Linux's ARCH= for this target
    minimum: tuple[tuple[str, str], ...] = ()   # (package, oldest version that supports it)
    elf_abi: int = 0     # ABI version in e_flags (PowerPC64: 2 = ELFv2); 0: not checked
    qemu_cpu: str = ""   # qemu-user's -cpu, to catch instructions the target's CPU lacks
    long_double: int = 0     # sizeof(long double), which musl's ABI fixes per architecture
    qemu_min: str = ""   # oldest qemu-user that runs the target's default code (e.g. LoongArch's LSX)

    def too_old(self, versions: dict[str, Version]) -> list[str]:
        """The selected versions older than this target needs, as `package version < minimum`."""
        return [f"{pkg} {versions[pkg].version} < {least}" for pkg, least in self.minimum
                if pkg in versions and version_key(versions[pkg].version) < version_key(least)]


@dataclass(frozen=True)
class Host:
    """A row of `hosts:` in recipes/targets.yaml: where a toolchain's own programs (gcc, cc1,
    as, ld) run other than the build machine with its libc: they are compiled, static, by
    our own toolchain for `stage0`, built first by the same task graph."""

    name: str
    stage0: Target
    doc: str = ""
    where: str = ""


@dataclass(frozen=True)
class Recipes:
    packages: dict[str, Package]
    targets: dict[str, Target]
    hosts: dict[str, Host] = field(default_factory=dict)

    def builds(self) -> dict[str, tuple[Target, Host | None]]:
        """Every toolchain the tasks can build, by name: `<target>` with programs for the
        build machine, and `<target>@<host>` for each host."""
        found: dict[str, tuple[Target, Host | None]] = {name: (t, None) for name, t in self.targets.items()}
        for host in self.hosts.values():
            found.update({f"{name}@{host.name}": (t, host) for name, t in self.targets.items()})
        return found

    def select(self, overrides: dict[str, str] | None = None) -> dict[str, Version]:
        """The version of every package: the recipe's default unless overridden."""
        overrides = overrides or {}
        for name in overrides:
            if name not in self.packages:
                close = difflib.get_close_matches(name, self.packages, n=1)
                raise RecipeError(f"no recipe for package {name!r}",
                                  fix=(f"did you mean {close[0]!r}? " if close else "")
                                  + "packages: " + ", ".join(self.packages))
        return {name: pkg.version(overrides.get(name, pkg.default), source="version setting")
                for name, pkg in self.packages.items()}



# --- loading -------------------------------------------------------------------------------

def version_key(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def _location(c: _Checker, m: Any, what: str) -> Location:
    c.fields(m, what, {"sha256": str, "hash_from": str},
             {"url": str, "debian": str, "file": str, "member": str, "variant": str, "size": int},
             hint="a location is `url:` or `debian:` + `file:`, with `sha256:` and `hash_from:`")
    kinds = [k for k in ("url", "debian") if m.get(k)]
    if len(kinds) != 1:
        raise RecipeError(f"{what} must have exactly one of 'url' or 'debian'", where=c.where(m),
                          fix="`url: https://...` for upstream or a mirror, or `debian: SOURCEPKG` "
                              "with `file: NAME` for Debian's source archive")
    sha = c.sha256(m)
    variant = m.get("variant") or ""
    size = m.get("size") or 0
    if "size" in m and (isinstance(m["size"], bool) or not isinstance(m["size"], int) or m["size"] <= 0):
        raise RecipeError(f"size {m['size']!r} is not a positive number of bytes", where=c.where(m, "size"),
                          fix="write the size printed by `stat -c %s FILE` for the file with this sha256, "
                              "or leave `size:` out")
    if variant and variant not in VARIANTS:
        raise RecipeError(f"unknown variant {variant!r}", where=c.where(m, "variant"),
                          fix="known variants: " + ", ".join(VARIANTS))
    if kinds[0] == "url":
        url = m["url"]
        problem = url_problem(url) or ("" if urlsplit(url).path.rsplit("/", 1)[-1] else "names no file")
        if problem:
            raise RecipeError(f"url {url!r} {problem}", where=c.where(m, "url"),
                              fix="write the full http(s) download URL, e.g. https://host/path/name.tar.xz")
        if m.get("member"):
            raise RecipeError("'member' is only supported for debian locations", where=c.where(m, "member"),
                              fix="point `url:` at the file itself")
        name = m.get("file") or url.rstrip("/").rsplit("/", 1)[-1]
        loc = Location("url", name, sha, m["hash_from"], url=url, variant=variant, where=c.where(m), size=size)
    else:
        if not m.get("file"):
            raise RecipeError(f"{what} has no 'file'", where=c.where(m),
                              fix="name the file of the source package, e.g. `file: musl_1.2.6.orig.tar.gz`")
        name = m["file"]
        if "*" in name and not m.get("member"):
            raise RecipeError("'*' in a Debian file name is only allowed with 'member'",
                              where=c.where(m, "file"),
                              fix="pin the exact orig file name; revisions vary only for debian.tar.xz")
        loc = Location("debian", name, sha, m["hash_from"], debian=m["debian"],
                       member=m.get("member") or "", variant=variant, where=c.where(m), size=size)
        if not name.startswith(loc.debian + "_") or not loc.debian_upstream_version:
            raise RecipeError(f"{name!r} is not a file name of Debian source package {loc.debian!r}",
                              where=c.where(m, "file"),
                              fix=f"write `{loc.debian}_VERSION.orig.tar.xz` or "
                                  f"`{loc.debian}_VERSION-*.debian.tar.xz`")
    if "/" in loc.file or loc.file in ("", ".", ".."):
        raise RecipeError(f"bad file name {loc.file!r}", where=c.where(m),
                          fix="a plain file name without '/'")
    return loc


def _locations(c: _Checker, m: _Map, key: str, what: str) -> tuple[Location, ...]:
    items = m.get(key)
    if not isinstance(items, list) or not items:
        raise RecipeError(f"{what} needs a non-empty list '{key}'", where=c.where(m, key),
                          fix=f"add `{key}:` with at least one `- url: ...` entry")
    return tuple(_location(c, item, f"{what} location") for item in items)


PATCH_OPTIONAL = {"cve": (str, list), "only_for": str, "locations": list}
RANGE_FORMS = ('"LOW:HIGH" (both ends included, either may be left out: "15:" or ":1.2.5"; '
               '":15" includes 15.x) or a list of exact versions, e.g. ["1.2.5", "1.2.6"]')


def _patch(c: _Checker, item: _Map, patch_dir: Path, package_dir: Path) -> Patch:
    """One checked entry of a `patches:` list: a local file in `patch_dir`, or remote."""
    name = item["file"]
    if not PATCH_NAME_RE.match(name):
        raise RecipeError(f"patch name {name!r} is not NNNN-what.patch", where=c.where(item, "file"),
                          fix="rename it like 0001-fix-something.patch (the number sets the order)")
    cves = item.get("cve") or []
    cves = [cves] if isinstance(cves, str) else cves
    for cve in cves:
        if not isinstance(cve, str) or not CVE_RE.match(cve):
            raise RecipeError(f"{cve!r} is not a CVE id", where=c.where(item, "cve"),
                              fix="write it as CVE-YYYY-NNNNN")
    only_for = item.get("only_for") or ""
    path = patch_dir / name
    if "locations" in item:
        locs = _locations(c, item, "locations", f"patch {name}")
        if path.is_file():
            raise RecipeError(f"{name} is both a remote patch and a file in {_rel(patch_dir)}",
                              where=c.where(item, "file"), fix="keep one of them")
        return Patch(name, item["why"], item["upstream"], tuple(cves), only_for, locs, where=c.where(item))
    if not path.is_file():
        fix = "add the file, give `locations:` for a remote patch, or drop the entry"
        elsewhere = sorted(package_dir.glob(f"*/{name}")) if patch_dir == package_dir else []
        if elsewhere:
            fix = (f"it is in {_rel(elsewhere[0].parent)}/: a patch of the package-level `patches:` is one "
                   f"file for all its versions, in {_rel(package_dir)}/ (move it there)")
        elif patch_dir != package_dir and (package_dir / name).is_file():
            fix = (f"{_rel(package_dir / name)} is a shared patch: list it in the package-level `patches:` "
                   f"with `versions:`, or move it into {_rel(patch_dir)}/")
        raise RecipeError(f"patch file {_rel(path)} does not exist", where=c.where(item, "file"), fix=fix)
    if "Upstream:" not in path.read_text(errors="replace").split("\n---", 1)[0][:4000]:
        raise RecipeError(f"patch {_rel(path)} has no 'Upstream:' line in its header",
                          where=c.where(item, "file"),
                          fix="start the patch with a header saying why, `Upstream: <link or status>`")
    return Patch(name, item["why"], item["upstream"], tuple(cves), only_for, path=path, where=c.where(item))


def _patches(c: _Checker, m: _Map, package: str, version: str, variants: set[str],
             patches_dir: Path) -> tuple[Patch, ...]:
    """A version's own `patches:`; their files are in patches/<package>/<version>/."""
    patch_dir = patches_dir / package / version
    on_disk = {p.name for p in patch_dir.glob("*.patch")} if patch_dir.is_dir() else set()
    listed: dict[str, Patch] = {}
    for item in m.get("patches") or []:
        if isinstance(item, dict) and "versions" in item:
            raise RecipeError(f"patch {item.get('file')} under version {version} has 'versions'",
                              where=c.where(item, "versions"),
                              fix="move the entry to the package-level `patches:` (beside `versions:`, its file "
                                  f"in {_rel(patches_dir / package)}/), or drop `versions:`")
        c.fields(item, "patch", {"file": str, "why": str, "upstream": str}, PATCH_OPTIONAL)
        name = item["file"]
        if name in listed:
            raise RecipeError(f"patch {name} is listed twice", where=c.where(item, "file"),
                              fix="keep one of the two entries")
        patch = _patch(c, item, patch_dir, patches_dir / package)
        if patch.only_for and patch.only_for not in variants:
            raise RecipeError(f"patch {name} is only_for {patch.only_for!r} but no location of "
                              f"{package} {version} has that variant", where=c.where(item, "only_for"),
                              fix="mark the location with `variant: " + patch.only_for + "` or drop only_for")
        listed[name] = patch
    for name in sorted(on_disk - set(listed)):
        shared = patches_dir / package / name
        raise RecipeError(f"{_rel(patch_dir / name)} is not listed in {_rel(c.path)} version {version}",
                          where=c.where(m),
                          fix=(f"delete it if it is the shared {_rel(shared)}, or add" if shared.is_file() else "add")
                          + f" `- file: {name}` with `why:` and `upstream:` under `patches:`")
    return tuple(listed.values())


def _in_range(version: str, low: str, high: str) -> bool:
    """low <= version <= high by numeric components; `high` covers its point releases (15 has 15.3.0)."""
    key, top = version_key(version), version_key(high)
    return (not low or key >= version_key(low)) and (not high or key[:len(top)] <= top)


def _selected(c: _Checker, item: _Map, listed: list[str]) -> list[str]:
    """The listed versions a package-level patch's `versions:` selects (a range or a list)."""
    spec, where = item["versions"], c.where(item, "versions")
    if isinstance(spec, list):
        for v in spec:
            if not isinstance(v, str):
                raise RecipeError(f"version {v!r} in versions is a {type(v).__name__}", where=where,
                                  fix=f'quote it: "{v}"')
            if v not in listed:
                raise RecipeError(f"versions names {v!r}, which is not listed under the recipe's versions",
                                  where=where, fix="choose from: " + ", ".join(listed))
        selected = [v for v in listed if v in spec]
    elif isinstance(spec, str) and spec.count(":") == 1:
        low, high = (end.strip() for end in spec.split(":"))
        for end in (low, high):
            if end and not version_key(end):
                raise RecipeError(f"{end!r} in versions {spec!r} is not a version", where=where,
                                  fix="write " + RANGE_FORMS)
        selected = [v for v in listed if _in_range(v, low, high)]
    else:
        fix = "write " + RANGE_FORMS
        if isinstance(spec, str) and spec in listed:
            fix = f'write ["{spec}"] for exactly that version, or ' + RANGE_FORMS
        elif isinstance(spec, (int, float)):
            fix = 'quote it (YAML reads 15:16 unquoted as a number), e.g. "14.2.0:16.2.0"; or write ' + RANGE_FORMS
        raise RecipeError(f"versions {spec!r} is not a range or a list of versions", where=where, fix=fix)
    if not selected:
        raise RecipeError(f"versions {spec!r} selects none of the recipe's versions", where=where,
                          fix="listed versions: " + ", ".join(listed) + "; widen it, or drop the entry")
    return selected


def _shared_patches(c: _Checker, doc: _Map, package: str, located: dict[str, tuple[Location, ...]],
                    patches_dir: Path) -> dict[str, list[Patch]]:
    """The package-level `patches:` by version: each entry applies to the versions its `versions:`
    selects, and its file is patches/<package>/<file>, one copy for all of them."""
    package_dir = patches_dir / package
    chosen: dict[str, list[Patch]] = {ver: [] for ver in located}
    listed: set[str] = set()
    for item in doc.get("patches") or []:
        c.fields(item, "package-level patch", {"file": str, "why": str, "upstream": str, "versions": object},
                 PATCH_OPTIONAL, hint='a package-level patch has `file:`, `versions:` (which it applies '
                                      'to, e.g. "14.2.0:16.2.0"), `why:` and `upstream:`')
        name = item["file"]
        if name in listed:
            raise RecipeError(f"patch {name} is listed twice in the package-level patches",
                              where=c.where(item, "file"), fix="keep one entry, with all its versions")
        patch = _patch(c, item, package_dir, package_dir)
        for ver in _selected(c, item, list(located)):
            if patch.only_for and patch.only_for not in {loc.variant for loc in located[ver]}:
                raise RecipeError(f"patch {name} is only_for {patch.only_for!r} but no location of "
                                  f"{package} {ver} (in its versions) has that variant",
                                  where=c.where(item, "only_for"),
                                  fix=f"mark a location of {ver} with `variant: {patch.only_for}`, "
                                      f"leave {ver} out of `versions:`, or drop only_for")
            chosen[ver].append(patch)
        listed.add(name)
    return chosen


def _check_shared_listed(c: _Checker, doc: _Map, package_dir: Path, listed: set[str]) -> None:
    """Every patches/<package>/*.patch is an entry of the package-level `patches:`."""
    on_disk = {p.name for p in package_dir.glob("*.patch") if p.is_file()} if package_dir.is_dir() else set()
    for name in sorted(on_disk - listed):
        raise RecipeError(f"{_rel(package_dir / name)} is not listed in {_rel(c.path)}",
                          where=c.where(doc, "patches") if "patches" in doc else c.where(doc),
                          fix=f"add `- file: {name}` with `versions:`, `why:` and `upstream:` under the "
                              f"package-level `patches:`, or move it into {_rel(package_dir)}/<version>/ "
                              "and list it under that version")


def load_package(path: Path, patches_dir: Path | None = None) -> Package:
    patches_dir = patches_dir or path.parent.parent / "patches"
    c = _Checker(path)
    doc = _read_yaml(path)
    c.fields(doc, "recipe", {"package": str, "homepage": str, "default": str, "versions": dict},
             {"patches": list, "extract": list})
    extract = tuple(doc.get("extract") or ())
    for pattern in extract:
        glob = pattern.removeprefix("!") if isinstance(pattern, str) else ""
        if not glob or glob.startswith("/") or ".." in glob.split("/"):
            raise RecipeError(f"extract entry {pattern!r} is not a relative path or glob", where=c.where(doc, "extract"),
                              fix="write paths below the source's top folder, e.g. include/uapi or arch/*/include/uapi "
                                  "(with a leading ! for what to leave out, e.g. !gcc/testsuite)")
    if extract and extract[0].startswith("!"):
        raise RecipeError(f"extract starts with {extract[0]!r}: a list that leaves out only would write nothing",
                          where=c.where(doc, "extract"), fix="start with what to extract, e.g. '*' for everything")
    name = doc["package"]
    if name != path.stem:
        raise RecipeError(f"package {name!r} in a file named {path.name}", where=c.where(doc, "package"),
                          fix=f"write `package: {path.stem}` or rename the file")
    located: dict[str, tuple[Location, ...]] = {}
    previous = None
    for ver, body in doc["versions"].items():
        if not isinstance(ver, str):
            raise RecipeError(f"version {ver!r} is not a string", where=c.where(doc["versions"], ver),
                              fix=f'quote it: "{ver}"')
        c.fields(body, f"version {ver}", {"locations": list}, {"patches": list})
        if previous is not None and version_key(ver) > version_key(previous):
            raise RecipeError(f"version {ver} is listed after older {previous}",
                              where=c.where(doc["versions"], ver), fix="list versions newest first")
        previous = ver
        located[ver] = _locations(c, body, "locations", f"{name} {ver}")
    shared = _shared_patches(c, doc, name, located, patches_dir)
    versions: dict[str, Version] = {}
    for ver, locs in located.items():
        variants = {loc.variant for loc in locs if loc.variant}
        own = _patches(c, doc["versions"][ver], name, ver, variants, patches_dir)
        for p in own:
            twin = next((s for s in shared[ver] if s.file == p.file), None)
            if twin:
                raise RecipeError(f"patch {p.file} is listed twice for {name} {ver}: under the version "
                                  f"and in the package-level patches ({twin.where})", where=p.where,
                                  fix=f"drop one of them, or leave {ver} out of the package-level entry's `versions:`")
        patches = tuple(sorted(own + tuple(shared[ver]), key=lambda p: p.file))
        versions[ver] = Version(name, ver, locs, patches, path, where=c.where(doc["versions"], ver), extract=extract)
    _check_shared_listed(c, doc, patches_dir / name, {p.file for ps in shared.values() for p in ps})
    patch_root = patches_dir / name
    if patch_root.is_dir():
        for d in sorted(patch_root.iterdir()):
            if d.is_dir() and d.name not in versions:
                raise RecipeError(f"patch folder {_rel(d)} is for a version the recipe does not list",
                                  where=_rel(path), fix=f"add version {d.name} or remove the folder")
    if doc["default"] not in versions:
        raise RecipeError(f"default version {doc['default']!r} is not listed under versions",
                          where=c.where(doc, "default"), fix="choose one of: " + ", ".join(versions))
    return Package(name, doc["homepage"], doc["default"], versions, path)


FLOAT_ABIS = ("hard", "soft", "single", "double", "quad")


def load_hosts(path: Path, targets: dict[str, Target]) -> dict[str, Host]:
    c = _Checker(path)
    doc = _read_yaml(path)
    hosts = {}
    for name, body in (doc.get("hosts") or {}).items():
        c.fields(body, f"host {name}", {"stage0": str}, {"doc": str})
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", str(name)) or name == "build":
            raise RecipeError(f"host name {name!r} is not a lowercase word other than 'build'",
                              where=c.where(body), fix="name it like portable or portable-aarch64")
        if body["stage0"] not in targets:
            raise RecipeError(f"host {name}: stage0 {body['stage0']!r} is not a target", where=c.where(body, "stage0"),
                              fix="name the target whose toolchain compiles this host's programs: "
                                  + ", ".join(targets))
        hosts[name] = Host(name, targets[body["stage0"]], body.get("doc") or "", c.where(body))
    return hosts


def load_targets(path: Path) -> dict[str, Target]:
    c = _Checker(path)
    doc = _read_yaml(path)
    c.fields(doc, "targets file", {"targets": dict}, {"hosts": dict})
    targets = {}
    for name, body in doc["targets"].items():
        c.fields(body, f"target {name}",
                 {"triple": str, "elf_class": int, "elf_machine": str, "qemu": str, "kernel_arch": str},
                 {"gcc_configure": list, "rust_target": str, "float_abi": str, "endian": str, "eabi": int,
                  "minimum": dict, "elf_abi": int, "qemu_cpu": str, "long_double": int,
                  "qemu_min": str})
        if body["elf_class"] not in (32, 64):
            raise RecipeError(f"elf_class {body['elf_class']} is not 32 or 64",
                              where=c.where(body, "elf_class"), fix="write 32 or 64")
        if not body["elf_machine"].startswith("EM_"):
            raise RecipeError(f"elf_machine {body['elf_machine']!r} is not an e_machine name",
                              where=c.where(body, "elf_machine"), fix="write it as pyelftools does, e.g. EM_AARCH64")
        if body.get("float_abi", "") not in ("", *FLOAT_ABIS):
            raise RecipeError(f"float_abi {body['float_abi']!r} is not one of {', '.join(FLOAT_ABIS)}",
                              where=c.where(body, "float_abi"), fix="write what e_flags say, or leave it out")
        if body.get("endian", "little") not in ("little", "big"):
            raise RecipeError(f"endian {body['endian']!r} is not little or big", where=c.where(body, "endian"),
                              fix="write little or big")
        if not re.fullmatch(r"[a-z0-9_-]*", body.get("qemu_cpu", "")):
            raise RecipeError(f"qemu_cpu {body['qemu_cpu']!r} is not a qemu cpu name", where=c.where(body, "qemu_cpu"),
                              fix="write a name from qemu-<qemu>-static -cpu help, e.g. arm1176")
        if body.get("long_double", 8) not in (8, 12, 16):
            raise RecipeError(f"long_double {body['long_double']} is not 8, 12 or 16",
                              where=c.where(body, "long_double"), fix="write sizeof(long double) in bytes")
        if not re.fullmatch(r"[a-z0-9_]+", body["qemu"]):
            raise RecipeError(f"qemu {body['qemu']!r} is not a qemu machine name", where=c.where(body, "qemu"),
                              fix="write the part of qemu-<name>-static, e.g. aarch64 or arm")
        if not re.fullmatch(r"(\d+(\.\d+)*)?", body.get("qemu_min", "")):
            raise RecipeError(f"qemu_min {body['qemu_min']!r} is not a version", where=c.where(body, "qemu_min"),
                              fix='write a quoted version such as "8.1"')
        minimum = body.get("minimum") or {}
        for pkg, least in minimum.items():
            if pkg not in PACKAGES or not isinstance(least, str):
                raise RecipeError(f"minimum {pkg!r}: {least!r} is not a package and a quoted version",
                                  where=c.where(body, "minimum"), fix="write e.g. musl: \"1.2.5\"; packages: "
                                  + ", ".join(PACKAGES))
        flags = body.get("gcc_configure") or []
        for flag in flags:
            if not isinstance(flag, str) or not flag.startswith("--"):
                raise RecipeError(f"gcc_configure entry {flag!r} is not a --option",
                                  where=c.where(body, "gcc_configure"), fix="write options like --with-arch=armv7-a")
        targets[name] = Target(name, body["triple"], tuple(flags), body.get("rust_target") or "",
                               body["qemu"], body["elf_class"], body["elf_machine"],
                               body.get("float_abi") or "", where=c.where(body),
                               endian=body.get("endian", "little"), eabi=body.get("eabi") or 0,
                               kernel_arch=body["kernel_arch"], minimum=tuple(minimum.items()),
                               elf_abi=body.get("elf_abi") or 0, qemu_cpu=body.get("qemu_cpu") or "",
                               long_double=body.get("long_double") or 0, qemu_min=body.get("qemu_min") or "")
    return targets


def load(recipes_dir: Path = RECIPES_DIR) -> Recipes:
    packages = {}
    for name in PACKAGES:
        path = recipes_dir / f"{name}.yaml"
        if not path.exists():
            raise RecipeError(f"missing recipe {_rel(path)}", fix=f"add a recipe for {name}")
        packages[name] = load_package(path, recipes_dir.parent / "patches")
    for extra in sorted(recipes_dir.glob("*.yaml")):
        if extra.stem not in PACKAGES and extra.name != "targets.yaml":
            raise RecipeError(f"{_rel(extra)} is not a known package recipe", where=_rel(extra),
                              fix="packages: " + ", ".join(PACKAGES))
    targets = load_targets(recipes_dir / "targets.yaml")
    return Recipes(packages, targets, load_hosts(recipes_dir / "targets.yaml", targets))
