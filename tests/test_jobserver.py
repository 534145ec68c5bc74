"""The run's make jobserver, with real GNU make: two makes started side by side through the
stage runner (as two toolchains' stages are under `doit -n 2`) share `jobs` tokens instead of
each running `-j<jobs>` jobs."""
from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from toolchain.build import jobserver, runner

# six jobs that each record how many jobs (of both makes) are running while they run
MAKEFILE = """\
JOBS := a b c d e f
all: $(JOBS)
$(JOBS):
\t@touch $(RUNNING)/$(NAME)-$@; sleep 0.4; ls $(RUNNING) | wc -l >> $(SEEN); sleep 0.4; rm $(RUNNING)/$(NAME)-$@
.PHONY: all $(JOBS)
"""


@pytest.fixture
def fresh_jobserver(monkeypatch):
    """The module's state as at the start of a doit run (none), restored after."""
    monkeypatch.setattr(jobserver, "_PIPE", None)
    monkeypatch.setattr(jobserver, "_JOBS", 0)
    yield
    if jobserver._PIPE:
        for fd in jobserver._PIPE:
            os.close(fd)


def most_at_once(tmp_path: Path, jobs: int) -> int:
    """Run two makes at once through the runner, each `make <-j as Build.make gives it>`;
    the most jobs seen running together."""
    running, seen = tmp_path / "running", tmp_path / "seen"
    running.mkdir()
    (tmp_path / "Makefile").write_text(MAKEFILE)

    def one(name: str):
        runner.run(["make", *jobserver.make_jobs(jobs), f"RUNNING={running}", f"SEEN={seen}", f"NAME={name}"],
                   log=tmp_path / f"{name}.log", cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    threads = [threading.Thread(target=one, args=(n,)) for n in ("first", "second")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return max(int(x) for x in seen.read_text().split())


def test_without_a_jobserver_each_make_runs_its_own_jobs(tmp_path, fresh_jobserver):
    assert jobserver.make_jobs(2) == ["-j2"]
    assert most_at_once(tmp_path, 2) == 4          # the measurement sees oversubscription


def test_two_makes_share_the_runs_jobs(tmp_path, fresh_jobserver):
    jobserver.start(2)
    assert jobserver.active() and jobserver.make_jobs(2) == []
    # one token in the pipe plus each make's own job: at most 3, never 4
    assert 2 <= most_at_once(tmp_path, 2) <= 3
    env, fds = jobserver.for_command({"PATH": "/bin"})
    assert env["MAKEFLAGS"].endswith(f"--jobserver-auth={fds[0]},{fds[1]}") and env["PATH"] == "/bin"
    # every token came back: the pipe holds jobs - 1 again
    os.set_blocking(fds[0], False)
    assert os.read(fds[0], 16) == b"+"
    os.write(fds[1], b"+")
