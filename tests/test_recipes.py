"""Recipe validation: the real recipes load; each kind of mistake gives file:line and a fix."""
from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

import pytest
import yaml

from toolchain.sources import recipes
from toolchain.errors import RecipeError

REPO = Path(__file__).resolve().parent.parent


def vkey(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v))


# --- the project's recipes: invariants, not today's numbers -------------------------------

def test_project_recipes_load_with_the_required_defaults():
    r = recipes.load()
    assert set(r.packages) == set(recipes.PACKAGES)
    assert r.targets and all("-linux-musl" in t.triple for t in r.targets.values())
    for name, pkg in r.packages.items():
        assert pkg.default in pkg.versions, name
        assert list(pkg.versions) == sorted(pkg.versions, key=vkey, reverse=True), name   # newest first
    d = {name: pkg.default for name, pkg in r.packages.items()}
    assert vkey(d["gcc"]) >= (15,)
    assert vkey(d["binutils"]) >= (2, 45)
    assert vkey(d["musl"]) >= (1, 2, 6)
    # the previous series is selectable too
    assert any(vkey(v)[0] < vkey(d["gcc"])[0] for v in r.packages["gcc"].versions)
    assert any(vkey(v)[:2] < vkey(d["binutils"])[:2] for v in r.packages["binutils"].versions)
    assert any(vkey(v) < vkey(d["musl"]) for v in r.packages["musl"].versions)


def test_every_default_can_come_from_debian_and_every_location_is_pinned():
    r = recipes.load()
    for name, pkg in r.packages.items():
        default = pkg.versions[pkg.default]
        assert any(loc.kind == "debian" for loc in default.locations), name
        for v in pkg.versions.values():
            for loc in v.locations + tuple(l for p in v.patches for l in p.locations):
                assert re.fullmatch(r"[0-9a-f]{64}", loc.sha256) and loc.hash_from


def test_variant_patches_only_apply_to_a_source_of_that_variant():
    seen = 0
    for pkg in recipes.load().packages.values():
        for v in pkg.versions.values():
            plain = v.patches_for("")
            assert [p.file for p in plain] == sorted(p.file for p in v.patches if not p.only_for)
            for variant in {p.only_for for p in v.patches if p.only_for}:
                assert variant in {loc.variant for loc in v.locations}, v.key
                mine = v.patches_for(variant)
                assert [p.file for p in mine] == sorted(p.file for p in v.patches if p.only_for in ("", variant))
                assert all(p not in plain for p in mine if p.only_for)
                seen += 1
    assert seen, "no variant patch left to check"


def test_every_patch_file_is_listed_has_a_header_and_is_stored_once():
    r = recipes.load()
    used = {p.path for pkg in r.packages.values() for v in pkg.versions.values() for p in v.patches if p.path}
    on_disk = set((REPO / "patches").rglob("*.patch"))
    assert on_disk == used
    for path in on_disk:
        assert recipes.PATCH_NAME_RE.match(path.name), path
        assert "Upstream:" in path.read_text().split("\n---", 1)[0], path
        # patches/<pkg>/<file> is shared by versions; patches/<pkg>/<version>/<file> is that version's
        rel = path.relative_to(REPO / "patches").parts
        assert rel[0] in r.packages and (len(rel) == 2 or (len(rel) == 3 and rel[1] in r.packages[rel[0]].versions))
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in on_disk]
    assert len(set(digests)) == len(digests), "the same patch is stored twice: declare it once with `versions:`"


def test_targets_have_what_the_gates_need():
    for name, t in recipes.load().targets.items():
        assert t.elf_class in (32, 64) and t.elf_machine.startswith("EM_"), name
        floats = [f.split("=", 1)[1] for f in t.gcc_configure if f.startswith("--with-float=")]
        assert floats in ([], [t.float_abi]), name   # what gcc is told is what the gates check


# --- a scratch copy of the recipes, broken on purpose ------------------------------------

def edit(path: Path, pattern: str, new: str) -> int:
    """Replace the first match of the regex `pattern` (multi-line mode); return the line it was on."""
    text = path.read_text()
    m = re.search(pattern, text, re.M)
    assert m, f"test setup: {pattern!r} not in {path}"
    path.write_text(text[:m.start()] + m.expand(new) + text[m.end():])
    return text[:m.start()].count("\n") + 1


def load_error(scratch: Path, match: str) -> RecipeError:
    with pytest.raises(RecipeError, match=match) as e:
        recipes.load(scratch)
    return e.value


def test_unknown_field_names_file_line_and_suggests(scratch):
    line = edit(scratch / "musl.yaml", r"^(\s+)sha256: ", r"\1sha265: ")
    err = load_error(scratch, "unknown field 'sha265'")
    assert err.where == f"recipes/musl.yaml:{line}" or err.where.endswith(f"musl.yaml:{line}")
    assert "did you mean 'sha256'" in err.fix


def test_missing_hash(scratch):
    edit(scratch / "mpc.yaml", r"^\s+sha256: .*\n", "")
    err = load_error(scratch, "has no 'sha256'")
    assert "mpc.yaml" in err.where


def test_bad_hash(scratch):
    line = edit(scratch / "mpfr.yaml", r"^(\s+sha256: )[0-9a-f]{64}$", r"\1XYZ")
    err = load_error(scratch, "'XYZ' is not a sha256")
    assert err.where.endswith(f"mpfr.yaml:{line}") and "sha256sum" in err.fix


def test_unquoted_version_number(scratch):
    text = (scratch / "binutils.yaml").read_text()
    version = re.search(r'^  "(\d+\.\d+)":', text, re.M).group(1)   # one that YAML reads as a float
    edit(scratch / "binutils.yaml", rf'^  "{re.escape(version)}":', f"  {version}:")
    err = load_error(scratch, f"version {version} is not a string")
    assert "binutils.yaml" in err.where and f'quote it: "{version}"' in err.fix


def test_missing_hash_provenance(scratch):
    edit(scratch / "mpc.yaml", r"^\s+hash_from: .*\n", "")
    load_error(scratch, "has no 'hash_from'")


def test_versions_must_be_newest_first(scratch):
    newest, older = list(recipes.load().packages["musl"].versions)[:2]
    text = (scratch / "musl.yaml").read_text()
    a = text.index(f'  "{newest}":')
    b = text.index(f'  "{older}":')
    (scratch / "musl.yaml").write_text(text[:a] + text[b:] + text[a:b])
    assert "newest first" in load_error(scratch, f"version {newest} is listed after older {older}").fix


def test_default_must_be_listed(scratch):
    default = recipes.load().packages["musl"].default
    edit(scratch / "musl.yaml", r"^default: .*$", 'default: "0.0.404"')
    err = load_error(scratch, "default version '0.0.404' is not listed")
    assert default in err.fix


def test_invalid_yaml_names_the_line(scratch):
    edit(scratch / "gmp.yaml", r"^    locations:", "    locations: [")
    err = load_error(scratch, "not valid YAML")
    assert re.search(r"gmp.yaml:\d+", err.where)


def test_unknown_version_selection():
    r = recipes.load()
    with pytest.raises(RecipeError, match="gcc version '9.9.9'") as e:
        r.select({"gcc": "9.9.9"})
    assert r.packages["gcc"].default in e.value.fix
    with pytest.raises(RecipeError, match="no recipe for package 'gccc'") as e:
        r.select({"gccc": "1"})
    assert "did you mean 'gcc'" in e.value.fix


def test_unlisted_patch_file_is_an_error(scratch):
    d = scratch.parent / "patches" / "musl" / recipes.load().packages["musl"].default
    d.mkdir(parents=True, exist_ok=True)
    (d / "0009-extra.patch").write_text("Upstream: x\n---\n")
    err = load_error(scratch, "0009-extra.patch is not listed")
    assert "- file: 0009-extra.patch" in err.fix


def _local_patch(shared: bool) -> recipes.Patch:
    """A local patch of the project: shared by versions (patches/<pkg>/) or one version's own."""
    for pkg in recipes.load().packages.values():
        for v in pkg.versions.values():
            for p in v.patches:
                if p.path and (p.path.parent.name == pkg.name) == shared:
                    return p
    pytest.skip("the project has no such patch")


@pytest.mark.parametrize("shared", [False, True], ids=["per-version", "shared"])
def test_listed_patch_must_exist_and_have_an_upstream_header(scratch, shared):
    patch = _local_patch(shared)
    p = scratch.parent / patch.path.relative_to(REPO)
    p.write_text(p.read_text().replace("Upstream:", "Origin:"))
    load_error(scratch, f"{patch.file} has no 'Upstream:' line")
    p.unlink()
    load_error(scratch, f"{patch.file} does not exist")


def test_only_for_needs_a_location_of_that_variant(scratch):
    pkg, variant = next((pkg, p.only_for) for pkg in recipes.load().packages.values()
                        for v in pkg.versions.values() for p in v.patches if p.only_for)
    path = scratch / pkg.recipe.name
    path.write_text(re.sub(rf"^\s+variant: {variant}\n", "", path.read_text(), flags=re.M))
    err = load_error(scratch, f"only_for '{variant}'")
    assert f"variant: {variant}" in err.fix


def test_unknown_target_field(scratch):
    line = edit(scratch / "targets.yaml", r"^(\s+)elf_class:", r"\1elf_clas:")
    err = load_error(scratch, "unknown field 'elf_clas'")
    assert err.where.endswith(f"targets.yaml:{line}") and "did you mean 'elf_class'" in err.fix


def test_qemu_min_must_be_a_version(scratch):
    line = edit(scratch / "targets.yaml", r'^(\s+)qemu_min: "8.1"', r'\1qemu_min: "eight"')
    err = load_error(scratch, "qemu_min 'eight' is not a version")
    assert err.where.endswith(f"targets.yaml:{line}")


def test_debian_file_must_belong_to_the_package(scratch):
    edit(scratch / "musl.yaml", r"^(\s+)file: musl_(\S+?)\.orig\.tar\.(\w+)$", r"\1file: musl-\2.tar.\3")
    load_error(scratch, "not a file name of Debian source package 'musl'")


# --- patches declared once for several versions (`versions:` of a package-level patch) -----

DEMO = ("2.0.1", "1.3.0", "1.2.6", "1.2.5", "1.1.24")   # newest first
DFSG = ("2.0.1", "1.3.0")                                # versions with a dfsg location


def entry(file: str, **fields) -> dict:
    return {"file": file, "why": "test", "upstream": "none", **fields}


def demo(tmp_path: Path, shared: list[dict] | None = None, own: dict[str, list[dict]] | None = None) -> Path:
    """recipes/demo.yaml with the DEMO versions, package-level `shared` and per-version `own` patches."""
    doc: dict = {"package": "demo", "homepage": "https://example.invalid/", "default": DEMO[0]}
    if shared is not None:
        doc["patches"] = shared
    doc["versions"] = {}
    for v in DEMO:
        locs = [{"url": f"https://example.invalid/demo-{v}.tar.gz", "sha256": "0" * 64, "hash_from": "test"}]
        if v in DFSG:
            locs.append({"debian": "demo", "file": f"demo_{v}+dfsg.orig.tar.xz", "sha256": "1" * 64,
                         "hash_from": "test", "variant": "dfsg"})
        doc["versions"][v] = {"locations": locs, **({"patches": own[v]} if own and v in own else {})}
    path = tmp_path / "recipes" / "demo.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def patch_file(tmp_path: Path, name: str, version: str = "") -> Path:
    """patches/demo/<name> (shared), or patches/demo/<version>/<name>."""
    d = tmp_path / "patches" / "demo" / version
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_text("From: test\n\nUpstream: none\n---\n")
    return d / name


def lines_of(path: Path, text: str) -> list[int]:
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line]


def line_of(path: Path, text: str) -> int:
    return lines_of(path, text)[0]


def demo_error(path: Path, match: str) -> RecipeError:
    with pytest.raises(RecipeError, match=match) as e:
        recipes.load_package(path)
    return e.value


def applies_to(pkg: recipes.Package, file: str) -> list[str]:
    return [v.version for v in pkg.versions.values() if any(p.file == file for p in v.patches)]


@pytest.mark.parametrize("versions, selected", [
    ("1.2.5:1.3.0", ["1.3.0", "1.2.6", "1.2.5"]),            # both ends included
    ("1.2.6:", ["2.0.1", "1.3.0", "1.2.6"]),                  # open top
    (":1.2.5", ["1.2.5", "1.1.24"]),                          # open bottom
    (":", list(DEMO)),
    ("1.2:1.2", ["1.2.6", "1.2.5"]),                          # an upper end covers its point releases
    ("1.2.10:", ["2.0.1", "1.3.0"]),                          # numeric, not text: 1.2.6 < 1.2.10
    (["2.0.1", "1.2.5"], ["2.0.1", "1.2.5"]),                 # a list of exact versions
])
def test_a_shared_patch_applies_to_the_versions_it_names(tmp_path, versions, selected):
    shared = patch_file(tmp_path, "0001-shared.patch")
    pkg = recipes.load_package(demo(tmp_path, [entry("0001-shared.patch", versions=versions)]))
    assert applies_to(pkg, "0001-shared.patch") == selected
    for v in selected:
        assert [(p.file, p.path) for p in pkg.versions[v].patches_for("")] == [("0001-shared.patch", shared)]


def test_shared_and_own_patches_of_a_version_apply_in_name_order(tmp_path):
    patch_file(tmp_path, "0001-own.patch", "1.2.6")
    patch_file(tmp_path, "0002-shared.patch")
    remote = entry("0003-remote.patch", versions="1.2:1.2", locations=[
        {"url": "https://example.invalid/fix.patch", "sha256": "2" * 64, "hash_from": "test"}])
    pkg = recipes.load_package(demo(tmp_path, [remote, entry("0002-shared.patch", versions=":1.2.6")],
                                    own={"1.2.6": [entry("0001-own.patch")]}))
    v = pkg.versions["1.2.6"]
    assert [p.file for p in v.patches] == ["0001-own.patch", "0002-shared.patch", "0003-remote.patch"]
    assert v.patches[0].path.parent.name == "1.2.6" and v.patches[1].path.parent.name == "demo"
    assert v.patches[2].remote and v.patches[2].path is None
    assert [p.file for p in pkg.versions["1.1.24"].patches] == ["0002-shared.patch"]
    assert pkg.versions["2.0.1"].patches == ()
    assert pkg.versions["1.2.5"].patches[0] is v.patches[1]    # one Patch, declared once


@pytest.mark.parametrize("versions, match, fix", [
    ("3:", r"versions '3:' selects none of the recipe's versions", "2.0.1, 1.3.0, 1.2.6"),
    ("1.3:1.2", r"versions '1.3:1.2' selects none", "2.0.1, 1.3.0, 1.2.6"),
    ([], r"versions \[\] selects none", "2.0.1, 1.3.0, 1.2.6"),
    (["1.2.7"], r"versions names '1.2.7', which is not listed", "1.2.6, 1.2.5"),
    ("1.2.6", r"versions '1.2.6' is not a range or a list", '["1.2.6"]'),
    ("1.2:1.3:1.4", r"is not a range or a list", '"LOW:HIGH"'),
    ("x:1.3", r"'x' in versions 'x:1.3' is not a version", '"LOW:HIGH"'),
])
def test_a_bad_or_empty_range_is_an_error_at_its_line(tmp_path, versions, match, fix):
    patch_file(tmp_path, "0001-shared.patch")
    path = demo(tmp_path, [entry("0001-shared.patch", versions=versions)])
    err = demo_error(path, match)
    assert err.where.endswith(f"demo.yaml:{line_of(path, 'versions:')}") and fix in err.fix


def test_an_unquoted_range_read_as_a_number_says_quote_it(tmp_path):
    patch_file(tmp_path, "0001-shared.patch")
    path = demo(tmp_path, [entry("0001-shared.patch", versions="1:30")])
    path.write_text(path.read_text().replace("versions: '1:30'", "versions: 1:30"))   # YAML 1.1: 90
    assert "quote it" in demo_error(path, "versions 90 is not a range").fix


def test_a_shared_patch_file_must_be_listed(tmp_path):
    patch_file(tmp_path, "0001-shared.patch")
    patch_file(tmp_path, "0002-stray.patch")
    path = demo(tmp_path, [entry("0001-shared.patch", versions="1.2:")])
    err = demo_error(path, r"patches/demo/0002-stray.patch is not listed in .*demo.yaml")
    assert err.where.endswith(f"demo.yaml:{line_of(path, 'patches:')}")
    assert "- file: 0002-stray.patch" in err.fix and "versions:" in err.fix
    (tmp_path / "patches" / "demo" / "0001-shared.patch").unlink()    # and without any package-level list
    demo_error(demo(tmp_path), "0002-stray.patch is not listed")


def test_a_shared_patch_and_a_version_patch_of_the_same_name_is_an_error(tmp_path):
    patch_file(tmp_path, "0001-fix.patch")
    patch_file(tmp_path, "0001-fix.patch", "1.2.6")
    path = demo(tmp_path, [entry("0001-fix.patch", versions="1.2:")], own={"1.2.6": [entry("0001-fix.patch")]})
    err = demo_error(path, "patch 0001-fix.patch is listed twice for demo 1.2.6")
    shared_line, own_line = lines_of(path, "- file: 0001-fix.patch")
    assert err.where.endswith(f"demo.yaml:{own_line}") and f"demo.yaml:{shared_line}" in err.what
    assert "leave 1.2.6 out" in err.fix
    # leaving 1.2.6 out of the range is the fix
    recipes.load_package(demo(tmp_path, [entry("0001-fix.patch", versions=["1.2.5"])],
                              own={"1.2.6": [entry("0001-fix.patch")]}))


def test_a_patch_is_found_only_where_its_entry_says(tmp_path):
    patch_file(tmp_path, "0001-fix.patch", "1.2.6")     # a version's folder, but listed as shared
    err = demo_error(demo(tmp_path, [entry("0001-fix.patch", versions="1.2:")]),
                     r"patch file \S*/patches/demo/0001-fix.patch does not exist")
    assert "patches/demo/1.2.6/" in err.fix and "move it" in err.fix
    shutil.rmtree(tmp_path / "patches")
    patch_file(tmp_path, "0001-fix.patch")              # shared, but listed under a version
    err = demo_error(demo(tmp_path, own={"1.2.6": [entry("0001-fix.patch")]}),
                     r"patch file \S*/patches/demo/1.2.6/0001-fix.patch does not exist")
    assert "package-level `patches:`" in err.fix


def test_only_for_on_a_range_needs_the_variant_in_every_selected_version(tmp_path):
    patch_file(tmp_path, "0001-dfsg.patch")
    pkg = recipes.load_package(demo(tmp_path, [entry("0001-dfsg.patch", versions="1.3:", only_for="dfsg")]))
    assert applies_to(pkg, "0001-dfsg.patch") == list(DFSG)
    for v in DFSG:
        assert [p.file for p in pkg.versions[v].patches_for("dfsg")] == ["0001-dfsg.patch"]
        assert pkg.versions[v].patches_for("") == []
    path = demo(tmp_path, [entry("0001-dfsg.patch", versions="1.2.6:", only_for="dfsg")])
    err = demo_error(path, "patch 0001-dfsg.patch is only_for 'dfsg' but no location of demo 1.2.6")
    assert err.where.endswith(f"demo.yaml:{line_of(path, 'only_for:')}")
    assert "variant: dfsg" in err.fix and "leave 1.2.6 out of `versions:`" in err.fix


@pytest.mark.parametrize("change, match", [
    ({"file": "fix.patch"}, "patch name 'fix.patch' is not NNNN-what.patch"),
    ({"versions": None}, "package-level patch has no 'versions'"),
    ({"cve": "CVE-1"}, "'CVE-1' is not a CVE id"),
    ({"only_for": "dfsg", "versions": ":"}, "only_for 'dfsg' but no location of demo 1.2.6"),
])
def test_a_shared_entry_gets_the_checks_of_a_version_entry(tmp_path, change, match):
    patch_file(tmp_path, "0001-shared.patch")
    item = {k: v for k, v in {**entry("0001-shared.patch", versions="1.2:"), **change}.items() if v is not None}
    demo_error(demo(tmp_path, [item]), match)


def test_a_shared_entry_listed_twice_or_without_a_header(tmp_path):
    p = patch_file(tmp_path, "0001-shared.patch")
    demo_error(demo(tmp_path, [entry("0001-shared.patch", versions="1.3:"),
                               entry("0001-shared.patch", versions=":1.2")]),
               "patch 0001-shared.patch is listed twice in the package-level patches")
    p.write_text("no header\n---\n")
    demo_error(demo(tmp_path, [entry("0001-shared.patch", versions="1.2:")]),
               r"patches/demo/0001-shared.patch has no 'Upstream:' line")


def test_versions_belongs_to_a_package_level_patch(tmp_path):
    patch_file(tmp_path, "0001-own.patch", "1.2.6")
    path = demo(tmp_path, own={"1.2.6": [entry("0001-own.patch", versions="1.2:")]})
    err = demo_error(path, "patch 0001-own.patch under version 1.2.6 has 'versions'")
    assert "package-level `patches:`" in err.fix


@pytest.mark.parametrize("entry, message", [
    ("  - ../etc\n", r"extract entry '\.\./etc' is not a relative path or glob"),
    ("  - '!/etc'\n", r"extract entry '!/etc' is not a relative path or glob"),
])
def test_an_extract_entry_outside_the_tree_is_a_file_line_error(tmp_path, entry, message):
    rdir = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes", rdir)
    shutil.copytree(REPO / "patches", tmp_path / "patches")
    text = (rdir / "linux.yaml").read_text().replace("  - include/uapi\n", entry)
    (rdir / "linux.yaml").write_text(text)
    with pytest.raises(RecipeError, match=message) as e:
        recipes.load(rdir)
    assert "linux.yaml:" in str(e.value)


def test_an_extract_list_that_only_leaves_out_is_an_error(tmp_path):
    rdir = tmp_path / "recipes"
    shutil.copytree(REPO / "recipes", rdir)
    shutil.copytree(REPO / "patches", tmp_path / "patches")
    text = (rdir / "gcc.yaml").read_text().replace('  - "*"\n', "")
    (rdir / "gcc.yaml").write_text(text)
    with pytest.raises(RecipeError, match=r"extract starts with '!gcc/testsuite'") as e:
        recipes.load(rdir)
    assert "gcc.yaml:" in str(e.value) and "'*'" in e.value.fix
