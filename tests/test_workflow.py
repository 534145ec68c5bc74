"""The GitHub Actions release workflow: valid against GitHub's workflow schema (checked
offline by check-jsonschema's built-in copy), fed by `python -m toolchain matrix`."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from toolchain.build.context import Build
from toolchain.build.stages.package import tarball_name
from toolchain.sources import recipes

REPO = Path(__file__).resolve().parent.parent
WORKFLOW = REPO / ".github" / "workflows" / "toolchains.yml"
CHECK = Path(sys.executable).parent / "check-jsonschema"


def schema_check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHECK), "--builtin-schema", "vendor.github-workflows", str(path)],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_the_workflow_is_valid_and_a_broken_one_is_not(tmp_path):
    r = schema_check(WORKFLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    text = WORKFLOW.read_text()
    assert "contents: write" in text
    broken = tmp_path / "broken.yml"
    broken.write_text(text.replace("contents: write", "contents: everything"))   # read, write or none
    r = schema_check(broken)
    assert r.returncode != 0 and "permissions" in r.stdout + r.stderr
    # (the file is text: PyYAML would read the key `on` as a boolean)
    assert yaml.safe_load(text)[True]["push"]["tags"] == ["v*"]


def test_the_matrix_has_a_job_per_target_row():
    r = subprocess.run([sys.executable, "-m", "toolchain", "matrix", "--host", "portable"], cwd=REPO,
                       capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    jobs = json.loads(r.stdout)["include"]
    known = recipes.load()
    assert [j["target"] for j in jobs] == list(known.targets)
    assert all(j["toolchain"] == f"{j['target']}@portable" and j["stage0"] == "x86_64" for j in jobs)
    assert {j["target"] for j in jobs if j["qemu_min"]} == {n for n, t in known.targets.items() if t.qemu_min}
    text = WORKFLOW.read_text()
    assert "python -m toolchain matrix --host portable" in text and "fromJSON(needs.matrix.outputs.include)" in text
    # the workflow picks each job's tarball by the name the package stage gives it
    b = Build(None, known.targets["aarch64"], known.select(), known.hosts["portable"])
    assert tarball_name(b).endswith("-portable") and "out/dist/*-portable.tar.gz" in text
