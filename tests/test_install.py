"""`pip install .` gives a `musl-toolchain` command whose doctor works from any folder."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_installed_command_works_outside_the_checkout(tmp_path):
    src = tmp_path / "src"      # a copy: setuptools writes build/ and *.egg-info beside the sources
    src.mkdir()
    shutil.copy(REPO / "pyproject.toml", src)
    shutil.copytree(REPO / "toolchain", src / "toolchain", ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", "--target", str(site), str(src)],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    env = {**os.environ, "PYTHONPATH": str(site)}
    command = [sys.executable, str(site / "bin" / "musl-toolchain")]
    r = subprocess.run([*command, "doctor", "/bin/true", "/dev/zero"], cwd="/", env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "dynamic: it runs only where these are present" in r.stdout
    assert "/dev/zero: not a regular file" in r.stderr
    r = subprocess.run([*command, "repro", "aarch64", "--dir", str(tmp_path / "r"), "--distfiles", str(tmp_path)],
                       cwd="/", env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "checkout" in r.stderr and "Traceback" not in r.stderr
