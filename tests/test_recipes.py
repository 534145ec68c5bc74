"""Recipe validation: the real recipes load; each kind of mistake gives file:line and a fix."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from toolchain import recipes
from toolchain.errors import RecipeError

REPO = Path(__file__).resolve().parent.parent


def vkey(v: str) -> tuple:
    return tuple(int(x) for x in re.findall(r"\d+", v))


def test_project_recipes_load_with_the_required_defaults():
    r = recipes.load()
    assert set(r.packages) == set(recipes.PACKAGES)
    assert set(r.targets) == {"x86_64", "aarch64", "armv7"}
    d = {name: pkg.default for name, pkg in r.packages.items()}
    assert vkey(d["gcc"]) >= (15,)
    assert vkey(d["binutils"]) >= (2, 45)
    assert d["musl"] == "1.2.6"
    # the previous series is selectable too
    assert any(vkey(v)[0] < vkey(d["gcc"])[0] for v in r.packages["gcc"].versions)
    assert any(vkey(v)[:2] < vkey(d["binutils"])[:2] for v in r.packages["binutils"].versions)
    assert "1.2.5" in r.packages["musl"].versions


def test_every_default_can_come_from_debian_and_every_location_is_pinned():
    r = recipes.load()
    for name, pkg in r.packages.items():
        default = pkg.versions[pkg.default]
        assert any(loc.kind == "debian" for loc in default.locations), name
        for v in pkg.versions.values():
            for loc in v.locations + tuple(l for p in v.patches for l in p.locations):
                assert re.fullmatch(r"[0-9a-f]{64}", loc.sha256) and loc.hash_from


def test_dfsg_patches_only_apply_to_the_dfsg_source():
    gcc = recipes.load().packages["gcc"]
    v = gcc.versions[gcc.default]
    assert [p.file for p in v.patches_for("dfsg")] == ["0001-dfsg-stamp-tm-texi.patch",
                                                       "0002-arm-static-pie-link-spec.patch"]
    assert [p.file for p in v.patches_for("")] == ["0002-arm-static-pie-link-spec.patch"]


def test_targets_have_what_the_gates_need():
    t = recipes.load().targets
    assert t["armv7"].float_abi == "hard" and "--with-float=hard" in t["armv7"].gcc_configure
    assert t["aarch64"].elf_machine == "EM_AARCH64" and t["aarch64"].qemu
    assert all(target.qemu and target.kernel_arch for target in t.values())


# --- a scratch copy of the recipes, broken on purpose ------------------------------------

@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    shutil.copytree(REPO / "patches", tmp_path / "patches")
    return tmp_path / "recipes"


def edit(path: Path, old: str, new: str, count: int = 1) -> int:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {path}"
    text = text.replace(old, new, count)
    path.write_text(text)
    return text[: text.index(new)].count("\n") + 1 if new else 0


def load_error(scratch: Path) -> RecipeError:
    with pytest.raises(RecipeError) as e:
        recipes.load(scratch)
    return e.value


def test_unknown_field_names_file_line_and_suggests(scratch):
    line = edit(scratch / "musl.yaml", "        sha256: d585", "        sha265: d585")
    err = load_error(scratch)
    assert err.where == f"recipes/musl.yaml:{line}" or err.where.endswith(f"musl.yaml:{line}")
    assert "sha265" in err.what and "did you mean 'sha256'" in err.fix


def test_missing_hash(scratch):
    edit(scratch / "mpc.yaml", "        sha256: ab642492f5cf882b74aa0cb730cd410a81edcdbec895183ce930e706c1c759b8\n", "")
    err = load_error(scratch)
    assert "mpc.yaml" in err.where and "has no 'sha256'" in err.what


def test_bad_hash(scratch):
    line = edit(scratch / "mpfr.yaml", "sha256: b67ba0383ef7", "sha256: XYZ")
    err = load_error(scratch)
    assert err.where.endswith(f"mpfr.yaml:{line}") and "not a sha256" in err.what
    assert "sha256sum" in err.fix


def test_unquoted_version_number(scratch):
    edit(scratch / "binutils.yaml", '  "2.46":', "  2.46:")
    err = load_error(scratch)
    assert "binutils.yaml" in err.where and 'quote it: "2.46"' in err.fix


def test_missing_hash_provenance(scratch):
    edit(scratch / "mpc.yaml", "        hash_from: crosstool-NG packages/mpc/1.3.1/chksum\n", "")
    assert "hash_from" in load_error(scratch).what


def test_versions_must_be_newest_first(scratch):
    text = (scratch / "musl.yaml").read_text()
    a = text.index('  "1.2.6":')
    b = text.index('  "1.2.5":')
    (scratch / "musl.yaml").write_text(text[:a] + text[b:] + text[a:b])
    assert "newest first" in load_error(scratch).fix


def test_default_must_be_listed(scratch):
    edit(scratch / "musl.yaml", 'default: "1.2.6"', 'default: "1.2.9"')
    err = load_error(scratch)
    assert "1.2.9" in err.what and "1.2.6" in err.fix


def test_invalid_yaml_names_the_line(scratch):
    edit(scratch / "gmp.yaml", "    locations:", "    locations: [")
    err = load_error(scratch)
    assert "not valid YAML" in err.what and re.search(r"gmp.yaml:\d+", err.where)


def test_unknown_target_and_version_selection():
    r = recipes.load()
    with pytest.raises(RecipeError, match="unknown target 'riscv64'") as e:
        r.target("riscv64")
    assert "aarch64" in e.value.fix
    with pytest.raises(RecipeError, match="gcc version '9.9.9'") as e:
        r.select({"gcc": "9.9.9"})
    assert "16.2.0" in e.value.fix
    with pytest.raises(RecipeError, match="no recipe for package 'gccc'") as e:
        r.select({"gccc": "1"})
    assert "did you mean 'gcc'" in e.value.fix


def test_unlisted_patch_file_is_an_error(scratch):
    d = scratch.parent / "patches" / "musl" / "1.2.6"
    d.mkdir(parents=True, exist_ok=True)
    (d / "0009-extra.patch").write_text("Upstream: x\n---\n")
    err = load_error(scratch)
    assert "0009-extra.patch is not listed" in err.what and "- file: 0009-extra.patch" in err.fix


def test_listed_patch_must_exist_and_have_an_upstream_header(scratch):
    p = scratch.parent / "patches" / "gmp" / "6.3.0" / "0001-dfsg-no-doc-subdir.patch"
    p.write_text(p.read_text().replace("Upstream:", "Origin:"))
    assert "no 'Upstream:' line" in load_error(scratch).what
    p.unlink()
    assert "does not exist" in load_error(scratch).what


def test_only_for_needs_a_location_of_that_variant(scratch):
    edit(scratch / "gmp.yaml", "        variant: dfsg\n", "")
    err = load_error(scratch)
    assert "only_for 'dfsg'" in err.what and "variant: dfsg" in err.fix


def test_unknown_target_field(scratch):
    line = edit(scratch / "targets.yaml", "    elf_class: 32", "    elf_clas: 32")
    err = load_error(scratch)
    assert err.where.endswith(f"targets.yaml:{line}") and "did you mean 'elf_class'" in err.fix


def test_debian_file_must_belong_to_the_package(scratch):
    edit(scratch / "musl.yaml", "file: musl_1.2.6.orig.tar.gz", "file: musl-1.2.6.tar.gz")
    assert "not a file name of Debian source package 'musl'" in load_error(scratch).what
