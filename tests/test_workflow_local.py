"""The release workflow's jobs, run on this machine: every `run:` step of
.github/workflows/toolchains.yml, as written, in job order (matrix, stage0, one matrix row of
build, release), with the toolchain cache pointed at a real OCI registry on 127.0.0.1
instead of ghcr.io. GitHub's parts are stood in for: `actions/checkout` copies this working
tree, `upload-artifact`/`download-artifact` copy folders, secrets and variables are a key
pair made here, and the release's `gh release create` (GitHub itself) is the one step not run.
The jobs' containers (Debian 12) are this machine (Debian 12).

An expression the runner does not know fails the test, so the workflow cannot grow past
what is checked here without this test saying so.

  MUSL_TOOLCHAIN_WORKFLOW_ROW   the matrix row to build (default aarch64)
  MUSL_TOOLCHAIN_WORKFLOW_SEED  an out folder where toolchain:x86_64 and/or the row's portable
                                toolchain are built at this commit: pushed to the registry
                                first, so the jobs restore them (minutes); what it lacks, and
                                everything without it, the jobs build cold (an hour or more)
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from test_workflow import WORKFLOW

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Runner:
    def __init__(self, tmp: Path, registry: str, secret: str, public: str, row: str):
        self.tmp, self.row = tmp, row
        self.artifacts = tmp / "artifacts"
        self.home = tmp / "home"
        real_cache = Path(os.path.expanduser("~/.cache"))
        (self.home / ".cache").mkdir(parents=True)
        for shared in ("musl-toolchain", "pip"):        # distfiles and pip's downloads, read-only use
            if (real_cache / shared).is_dir():
                (self.home / ".cache" / shared).symlink_to(real_cache / shared)
        self.workflow = yaml.safe_load(WORKFLOW.read_text())
        self.context = {
            "github.repository_owner": "local", "github.token": "local-token", "github.ref": "refs/tags/v0.0.0-local",
            "secrets.MUSL_TOOLCHAIN_CACHE_KEY": secret, "vars.MUSL_TOOLCHAIN_CACHE_PUBLIC_KEY": public,
        }
        self.cache = f"oci://{registry}/local/musl-toolchains"
        self.needs: dict[str, dict[str, str]] = {}     # each finished job's outputs
        self.steps: dict[str, dict[str, str]] = {}     # the running job's steps' outputs
        self.logs: dict[str, str] = {}

    def value(self, expr: str, matrix: dict, runner_temp: Path):
        if expr == "runner.temp":
            return str(runner_temp)
        m = re.fullmatch(r"([\w.]+) != '([^']*)'", expr)
        if m:      # before the names: `matrix.x != ''` starts with one
            return self.value(m.group(1), matrix, runner_temp) != m.group(2)
        if re.fullmatch(r"matrix\.\w+", expr):
            return str(matrix[expr.removeprefix("matrix.")])
        m = re.fullmatch(r"(steps|needs)\.(\w+)\.outputs\.(\w+)", expr)
        if m:
            return (self.steps if m.group(1) == "steps" else self.needs)[m.group(2)][m.group(3)]
        m = re.fullmatch(r"fromJSON\((.*)\)", expr)
        if m:
            return json.loads(self.value(m.group(1), matrix, runner_temp))
        m = re.fullmatch(r"startsWith\(([\w.]+), '([^']*)'\)", expr)
        if m:
            return self.value(m.group(1), matrix, runner_temp).startswith(m.group(2))
        if expr in self.context:
            return self.context[expr]
        raise AssertionError(f"the local runner does not know ${{{{ {expr} }}}}: teach it, or the workflow "
                             "has something this test does not check")

    def expand(self, text: str, matrix: dict, runner_temp: Path) -> str:
        return EXPR.sub(lambda m: str(self.value(m.group(1), matrix, runner_temp)), text)

    def condition(self, text: str, matrix: dict, runner_temp: Path) -> bool:
        m = EXPR.fullmatch(text.strip())
        return bool(self.value(m.group(1) if m else text.strip(), matrix, runner_temp))

    def checkout(self, dest: Path) -> None:
        files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                               capture_output=True, check=True).stdout.decode().split("\0")
        for name in filter(None, files):
            src = REPO / name
            if src.is_file() or src.is_symlink():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name, follow_symlinks=False)

    def job(self, job_id: str, matrix: dict | None = None) -> Path:
        """Run one job's steps in a fresh workspace; returns the workspace."""
        matrix = matrix or {}
        job = self.workflow["jobs"][job_id]
        label = f"{job_id}-{matrix.get('target', '')}".rstrip("-")
        work, runner_temp = self.tmp / label / "ws", self.tmp / label / "runner"
        work.mkdir(parents=True)
        runner_temp.mkdir()
        github_path: list[str] = []
        self.steps = {}
        base_env = {**{k: self.expand(str(v), matrix, runner_temp) for k, v in self.workflow.get("env", {}).items()},
                    "MUSL_TOOLCHAIN_CACHE": self.cache}
        log = []
        for step in job["steps"]:
            if "if" in step and not self.condition(str(step["if"]), matrix, runner_temp):
                continue
            uses = step.get("uses", "")
            w = {k: self.expand(str(v), matrix, runner_temp) for k, v in step.get("with", {}).items()}
            if uses.startswith("actions/checkout@"):
                self.checkout(work)
            elif uses.startswith("actions/upload-artifact@"):
                dest = self.artifacts / w["name"]
                dest.mkdir(parents=True)
                for f in work.glob(w["path"]):
                    shutil.copy2(f, dest / f.name)
            elif uses.startswith("actions/download-artifact@"):
                dest = work / w["path"]
                dest.mkdir(parents=True, exist_ok=True)
                for folder in sorted(self.artifacts.glob(w["pattern"])):
                    for f in folder.iterdir():
                        shutil.copy2(f, dest / f.name)
            elif uses:
                raise AssertionError(f"job {job_id}: the local runner does not know {uses}")
            elif "gh release create" in step["run"]:
                log.append(f"-- not run (GitHub itself): {step.get('name', '')}")
            else:
                output = runner_temp / f"output-{len(log)}"
                path_file = runner_temp / f"path-{len(log)}"
                env = {"PATH": ":".join([*github_path, os.environ["PATH"]]), "HOME": str(self.home),
                       "LANG": "C.UTF-8", "CI": "true", "GITHUB_ACTIONS": "true", "RUNNER_TEMP": str(runner_temp),
                       "GITHUB_OUTPUT": str(output), "GITHUB_PATH": str(path_file), "GITHUB_ACTOR": "local",
                       "GITHUB_REPOSITORY": "local/musl-toolchain", "GITHUB_REF_NAME": "v0.0.0-local",
                       **base_env, **{k: self.expand(str(v), matrix, runner_temp) for k, v in step.get("env", {}).items()}}
                script = self.expand(step["run"], matrix, runner_temp)
                cwd = work / step.get("working-directory", ".")
                r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   timeout=4 * 3600)
                log.append(f"-- {step.get('name', script.splitlines()[0])}\n{r.stdout}")
                assert r.returncode == 0, f"job {label}, step {step.get('name', script)}:\n{r.stdout[-4000:]}"
                if output.is_file() and "id" in step:
                    self.steps[step["id"]] = dict(line.split("=", 1) for line in output.read_text().splitlines() if "=" in line)
                if path_file.is_file():
                    github_path = [*path_file.read_text().split(), *github_path]
        for out_name, expr in job.get("outputs", {}).items():
            self.needs.setdefault(job_id, {})[out_name] = self.expand(expr, matrix, runner_temp)
        self.logs[label] = "\n".join(log)
        (self.tmp / f"{label}.log").write_text(self.logs[label])
        return work


def seed(cache: str, secret_file: Path, names: list[str]) -> None:
    out = os.environ.get("MUSL_TOOLCHAIN_WORKFLOW_SEED")
    if not out:
        return
    for name in names:
        if not (Path(out) / "build" / name / "stamps" / "package.json").is_file():
            print(f"seed: {name} is not built in {out}: the jobs build it")
            continue
        r = subprocess.run([sys.executable, "-m", "toolchain", "push", name, f"out={out}", f"cache={cache}",
                            f"cache_key={secret_file}"], cwd=REPO, capture_output=True, text=True, timeout=1800)
        assert r.returncode == 0, r.stderr


def test_the_release_workflow_runs_here_against_a_local_registry(tmp_path, registry):
    from toolchain.cache import sign
    host, _, _ = registry
    row = os.environ.get("MUSL_TOOLCHAIN_WORKFLOW_ROW", "aarch64")
    public = str(sign.keygen("release", tmp_path / "release.key"))
    secret = (tmp_path / "release.key").read_text().strip()
    run = Runner(tmp_path / "jobs", host, secret, public, row)

    run.job("matrix")
    include = json.loads(run.needs["matrix"]["include"])["include"]
    [entry] = [j for j in include if j["target"] == row]
    seed(run.cache, tmp_path / "release.key", [entry["stage0"], entry["toolchain"]])

    run.job("stage0")
    assert re.search(r"\[x86_64\] cache: (restored \(signed by release|pushed as [0-9a-f]{64}$)",
                     run.logs["stage0"], re.M), run.logs["stage0"][-3000:]

    work = run.job("build", entry)
    log = run.logs[f"build-{row}"]
    assert "[x86_64] cache: restored (signed by release" in log, log[-3000:]     # stage 0, from the stage0 job
    uploaded = run.artifacts / f"toolchain-{row}"
    [tarball] = uploaded.glob("*-portable.tar.gz")
    art = uploaded / f"{tarball.name}.artifact.json"
    sig = uploaded / f"{tarball.name}.artifact.json.sig"
    assert sign.verify(art.read_bytes(), sig.read_text().splitlines(), [sign.public_key(public)],
                       where=str(art)) == "release"
    assert json.loads(art.read_text())["tarball"]["sha256"] == subprocess.run(
        ["sha256sum", str(tarball)], capture_output=True, text=True, check=True).stdout.split()[0]
    assert (work / "out" / "dist" / tarball.name).is_file()

    release = run.job("release")
    sums = release / "dist" / "SHA256SUMS"
    assert tarball.name in sums.read_text() and art.name in sums.read_text()
    subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release / "dist", check=True, capture_output=True)
    assert "-- not run (GitHub itself): publish" in run.logs["release"]
