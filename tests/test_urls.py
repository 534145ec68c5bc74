"""One URL check for recipes, mirrors= and redirects; the recipe location fields it guards."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from toolchain import settings
from toolchain.sources import recipes
from toolchain.errors import RecipeError, ToolchainError
from toolchain.sources.urls import url_problem

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("url, problem", [
    ("ftp://host/x", "has ftp://"),
    ("http://", "has no host"),
    ("http://host:99999/", "Port out of range"),
    ("http://host:port/", "cannot be parsed"),
    ("http://[::1/", "cannot be parsed"),
    ("file:///tmp", "has file://"),
    ("host/path", "has no scheme"),
    ("http://exa mple/x", "whitespace"),
    ("http://example/\x00x", "control character"),
    ("http://" + "a" * 64 + ".example/x", "invalid host name"),
])
def test_bad_urls_are_named(url, problem):
    assert problem in url_problem(url)


@pytest.mark.parametrize("url", ["https://ok.example/d", "http://127.0.0.1:8080/x.tar.gz",
                                 "http://[::1]:80/x", "https://mirror.example/distfiles"])
def test_good_urls_pass(url):
    assert url_problem(url) == ""


@pytest.mark.parametrize("mirror, problem", [
    ("ftp://x", "has ftp://"),
    ("http://[::1", "cannot be parsed"),
    ("https://m.example/d?x=1", "?query"),
])
def test_bad_mirror_fails_at_settings_load(mirror, problem):
    with pytest.raises(ToolchainError) as e:
        settings.load({"mirrors": mirror}, env={})
    assert repr(mirror) in e.value.what and problem in e.value.what
    assert "https://" in e.value.fix


# --- recipe locations: url and size, with file:line ---------------------------------------

@pytest.fixture
def musl_recipe(tmp_path: Path) -> Path:
    """A scratch copy of the recipes; returns musl.yaml to break on purpose."""
    shutil.copytree(REPO / "recipes", tmp_path / "recipes")
    shutil.copytree(REPO / "patches", tmp_path / "patches")
    return tmp_path / "recipes" / "musl.yaml"


def break_recipe(path: Path, old: str, new: str) -> RecipeError:
    text = path.read_text()
    assert old in text, f"test setup: {old!r} not in {path}"
    line = text[: text.index(old)].count("\n") + 1
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(RecipeError) as e:
        recipes.load(path.parent)
    assert e.value.where.endswith(f"musl.yaml:{line}"), e.value.where
    return e.value


def test_recipe_url_must_be_http_or_https(musl_recipe):
    e = break_recipe(musl_recipe, "url: https://musl.libc.org/", "url: ftp://musl.libc.org/")
    assert "has ftp://" in e.what and "https://" in e.fix


def test_recipe_url_must_name_a_file(musl_recipe):
    musl = recipes.load().packages["musl"]
    url = next(loc.url for loc in musl.versions[musl.default].locations if loc.kind == "url")
    e = break_recipe(musl_recipe, f"url: {url}", f"url: {url.rsplit('/', 1)[0]}/")
    assert "names no file" in e.what


@pytest.mark.parametrize("value, message", [
    ("-5", "size -5 is not a positive number of bytes"),
    ("0", "size 0 is not a positive number of bytes"),
    ("true", "size True is not a positive number of bytes"),
    ('"1082499"', "field 'size' is a str, expected int"),
])
def test_recipe_size_must_be_a_positive_int(musl_recipe, value, message):
    e = break_recipe(musl_recipe, f"size: {stated_size(musl_recipe)}", f"size: {value}")
    assert message in e.what


def stated_size(recipe: Path) -> int:
    """The first `size:` the recipe states."""
    m = re.search(r"^\s+size: (\d+)$", recipe.read_text(), re.M)
    assert m, f"test setup: no size: in {recipe}"
    return int(m.group(1))


def test_recipe_sizes_are_loaded(musl_recipe):
    size = stated_size(musl_recipe)
    musl_recipe.write_text(musl_recipe.read_text().replace(f"size: {size}", f"size: {size + 1}", 1))
    musl = recipes.load(musl_recipe.parent).packages["musl"]
    assert size + 1 in {loc.size for v in musl.versions.values() for loc in v.locations}
