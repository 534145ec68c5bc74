"""Mistakes in settings, recipes and task names, and Ctrl-C: one clean message each, before
any work, never a traceback."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from toolchain import __main__ as cli
from toolchain import cmdline, repro, settings, tasks
from toolchain.sources import recipes
from toolchain.errors import RecipeError, ToolchainError

REPO = Path(__file__).resolve().parent.parent
TARGET = next(iter(recipes.load().targets.values()))
HOSTS = list(recipes.load().hosts)
TARGETS = "targets: " + ", ".join(recipes.load().targets) \
    + (f" (each also as <target>@{' or @'.join(HOSTS)})" if HOSTS else "")   # as targets.yaml lists them


def doit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), *args],
                          cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


# --- recipes that are not UTF-8 or hold characters YAML refuses ---------------------------

def insert_at_line(path: Path, line: int, raw: bytes) -> None:
    """Put `raw` at the start of 1-based `line`."""
    lines = path.read_bytes().split(b"\n")
    lines[line - 1] = raw + lines[line - 1]
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize("name", ["gcc.yaml", "targets.yaml"])
def test_recipe_that_is_not_utf8_names_file_and_line(scratch, name):
    path = scratch / name
    line = len(path.read_bytes().split(b"\n")) - 3   # far in: beyond the decoder's first chunk
    insert_at_line(path, line, b"# caf\xe9 latin-1\n")
    with pytest.raises(RecipeError) as e:
        recipes.load(scratch)
    assert e.value.where.endswith(f"{name}:{line}")
    assert "not UTF-8" in e.value.what and "0xe9" in e.value.what and "UTF-8" in e.value.fix


def test_control_character_in_a_recipe_names_file_and_line(scratch):
    insert_at_line(scratch / "musl.yaml", 5, b"# bell \x07 here\n")
    with pytest.raises(RecipeError) as e:
        recipes.load(scratch)
    assert e.value.where.endswith("musl.yaml:5")
    assert "U+0007" in e.value.what and "\\x07" in e.value.fix


def test_non_utf8_recipe_through_doit_is_one_error(scratch, tmp_path):
    insert_at_line(scratch / "mpc.yaml", 2, b"# \xff\n")
    r = doit("list", f"out={tmp_path}/out", f"recipes={scratch}")
    assert r.returncode != 0
    assert "mpc.yaml:2: not UTF-8" in r.stderr and "Traceback" not in r.stderr


# --- out= and distfiles= -------------------------------------------------------------------

def load_error(cmdline: dict, env: dict | None = None) -> ToolchainError:
    with pytest.raises(ToolchainError) as e:
        settings.load(cmdline, env={} if env is None else env)
    return e.value


@pytest.mark.parametrize("name", ["out", "distfiles"])
def test_empty_folder_setting_is_an_error(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)   # out= used to mean this folder
    other = {"distfiles": str(tmp_path / "d")} if name == "out" else {"out": str(tmp_path / "o")}
    err = load_error({name: "", **other})
    assert str(err).startswith(f"{name}='' is empty") and f"{name}=" in err.fix
    err = load_error(other, env={f"TOOLCHAIN_{name.upper()}": ""})
    assert f"TOOLCHAIN_{name.upper()}='' is empty" in str(err)


@pytest.mark.parametrize("name", ["out", "distfiles"])
def test_folder_setting_that_is_a_file_or_under_one(tmp_path, name):
    (tmp_path / "file").write_text("x")
    other = {"distfiles": str(tmp_path / "d")} if name == "out" else {"out": str(tmp_path / "o")}
    err = load_error({name: str(tmp_path / "file"), **other})
    assert f"{name}='{tmp_path / 'file'}' is a file" in err.what and err.fix
    err = load_error({name: str(tmp_path / "file" / "sub"), **other})
    assert f"{tmp_path / 'file'} is a file" in err.what and name in err.what
    # offline needs no writable distfiles, but a distfiles under a file is still wrong
    if name == "distfiles":
        err = load_error({name: str(tmp_path / "file" / "sub"), **other, "offline": "1"})
        assert "is a file" in err.what


@pytest.fixture
def read_only(tmp_path):
    """A read-only folder that root cannot write either (a read-only tmpfs)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "musl-toolchain-test", str(ro)],
                       capture_output=True, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (needs root)")
    yield ro
    subprocess.run(["umount", str(ro)], check=True)


def test_read_only_out_or_distfiles_is_an_error_but_offline_distfiles_may_be(tmp_path, read_only):
    err = load_error({"out": str(read_only / "out"), "distfiles": str(tmp_path / "d")})
    assert err.what == f"out='{read_only / 'out'}' cannot be written: Read-only file system"
    err = load_error({"out": str(tmp_path / "o"), "distfiles": str(read_only)})
    assert err.what.startswith("distfiles=") and "cannot be written" in err.what
    s = settings.load({"out": str(tmp_path / "o"), "distfiles": str(read_only), "offline": "1"}, env={})
    assert s.distfiles == read_only


def test_writable_check_leaves_only_the_folder(tmp_path):
    s = settings.load({"out": str(tmp_path / "a" / "out"), "distfiles": str(tmp_path / "d")}, env={})
    assert s.out.is_dir() and list(s.out.iterdir()) == [] and list(s.distfiles.iterdir()) == []


def test_bad_out_through_doit_is_one_error(tmp_path):
    (tmp_path / "file").write_text("x")
    r = doit("list", f"out={tmp_path}/file/out")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: out='{tmp_path}/file/out' cannot be a folder: {tmp_path}/file is a file")


# --- unknown targets and versions in task names ----------------------------------------------

def test_parse_tells_doit_commands_options_and_settings_from_task_names():
    p = cmdline.parse
    assert p([]) == cmdline.Request("run", ())
    assert p(["toolchain:aarch64", "jobs=2"]) == cmdline.Request("run", ("toolchain:aarch64",))
    assert p(["-n", "2", "-P", "thread", "toolchain:x86_64", "toolchain:armv7"]).tasks == \
        ("toolchain:x86_64", "toolchain:armv7")
    assert p(["-f", "dodo.py", "list", "--all", "out=/tmp/x"]) == cmdline.Request("list", ())
    assert p(["--verbosity", "2", "run", "-a", "binutils:armv7"]) == cmdline.Request("run", ("binutils:armv7",))
    assert p(["info", "gcc:aarch64"]) == cmdline.Request("info", ("gcc:aarch64",))
    for command in ("list", "info", "clean", "forget", "ignore", "strace", "dumpdb", "tabcompletion", "help"):
        assert p([command]).command == command


def test_doit_workers_default_to_one_per_toolchain_at_least_three_and_at_most_jobs_plus_one(tmp_path):
    def workers(jobs: str, *argv: str) -> int:
        ctx = tasks.Context({"out": str(tmp_path / "out"), "jobs": jobs})
        return ctx.doit_config(cmdline.parse(list(argv)))["num_process"]
    assert workers("2", "toolchain:aarch64") == 3
    assert workers("2", "toolchain:x86_64", "toolchain:aarch64", "gcc:aarch64") == 3
    assert workers("8", "gcc:aarch64") == 3
    assert workers("2", "toolchain:x86_64", "toolchain:aarch64", "toolchain:armv7") == 3
    assert workers("2", "toolchain:*") == 3          # the cap: jobs + 1
    assert workers("8", "toolchain:*") == min(len(recipes.load(REPO / "recipes").builds()), 9)
    assert workers("8", "toolchain:x86_64", "toolchain:aarch64", "toolchain:armv7", "toolchain:riscv64") == 4
    assert workers("2", "list") == 2 and workers("8", "list") == 2
    assert workers("1", "toolchain:aarch64") == 2    # jobs + 1
    assert "num_process" not in tasks.Context({"out": str(tmp_path / "out")}).doit_config()


@pytest.mark.parametrize("task", ["toolchain:sparc64", "binutils:sparc64", "gcc_core:sparc64",
                                  "sources:sparc64", "package:sparc64", "rust_obj:sparc64"])
def test_unknown_target_is_one_line_before_any_work(tmp_path, task):
    r = doit("-n", "2", "-P", "thread", task, f"out={tmp_path}/out", f"distfiles={tmp_path}/d")
    assert r.returncode != 0
    assert r.stderr == f"error: unknown target 'sparc64' in {task}; {TARGETS}\n"
    assert not (tmp_path / "out" / "build").exists()


def test_unknown_host_is_named_with_the_hosts(tmp_path):
    r = doit("toolchain:aarch64@mars", f"out={tmp_path}/out", f"distfiles={tmp_path}/d")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: unknown host 'mars' in toolchain:aarch64@mars; hosts: {', '.join(HOSTS)}")
    assert not (tmp_path / "out" / "build").exists()


def test_unknown_version_in_a_fetch_task_says_how_to_select_it(tmp_path):
    musl = recipes.load().packages["musl"]
    other = next(v for v in musl.versions if v != musl.default)
    r = doit(f"fetch:musl-{other}", f"out={tmp_path}/out", f"distfiles={tmp_path}/d")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert f"unknown package version 'musl-{other}' in fetch:musl-{other}" in r.stderr
    assert f"musl={other}" in r.stderr
    r = doit("source:musl-0.1", f"out={tmp_path}/out", f"distfiles={tmp_path}/d")
    assert "unknown package version 'musl-0.1'" in r.stderr and musl.default in r.stderr


def test_unknown_target_given_to_other_doit_commands(tmp_path):
    r = doit("info", "toolchain:sparc64", f"out={tmp_path}/out")
    assert r.returncode != 0 and r.stderr == f"error: unknown target 'sparc64' in toolchain:sparc64; {TARGETS}\n"
    r = doit("info", f"toolchain:{TARGET.name}", f"out={tmp_path}/out")
    assert r.stderr == "" and f"{TARGET.triple} toolchain" in r.stdout   # (status 1: not up to date)
    r = doit("list", "--all", "toolchain", f"out={tmp_path}/out")
    assert r.returncode == 0 and all(f"toolchain:{t}" in r.stdout for t in recipes.load().targets)


def test_repro_with_an_unknown_target_stops_before_work(tmp_path):
    r = subprocess.run([sys.executable, "-m", "toolchain", "repro", "sparc64", "--dir", str(tmp_path / "r"),
                        "--distfiles", str(tmp_path / "d")], cwd=REPO, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 2
    assert r.stderr == f"error: unknown target 'sparc64' in repro sparc64; {TARGETS}\n"
    assert not (tmp_path / "r").exists()


# --- Ctrl-C ----------------------------------------------------------------------------------

class SilentServer:
    """Accepts connections and never answers; `connected` is set on the first."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.connected = threading.Event()
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)
            self.connected.set()

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent_server():
    s = SilentServer()
    yield s
    s.close()


def test_ctrl_c_during_a_doit_run_is_one_line_and_status_130(tmp_path, silent_server):
    port = silent_server.port
    musl = recipes.load().packages["musl"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "doit", "-f", str(REPO / "dodo.py"), f"fetch:musl-{musl.default}",
         f"out={tmp_path}/out", f"distfiles={tmp_path}/d", "upstream=0", "debian=0",
         f"mirrors=http://127.0.0.1:{port}"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert silent_server.connected.wait(60), "doit never asked the server"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "Traceback" not in out + err
    assert err.strip().splitlines()[-1] == "interrupted"
    assert proc.returncode == 130


def test_ctrl_c_during_repro_is_one_line_and_status_130(tmp_path, monkeypatch, capsys):
    def interrupted(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(repro, "run", interrupted)
    try:
        status = cli.main(["repro", TARGET.name, "--dir", str(tmp_path / "r"), "--distfiles", str(tmp_path / "d")])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped (a traceback for the user)")
    assert status == 130 and capsys.readouterr().err == "interrupted\n"


def test_an_os_error_in_a_task_is_one_message_not_a_traceback():
    from toolchain.tasks import _guarded

    def full_disk():
        raise OSError(28, "No space left on device", "/out/build/x")
    failed = _guarded(full_disk)
    assert "/out/build/x: No space left on device" in failed.get_msg()
    assert "Traceback" not in failed.get_msg()


def test_an_offline_build_reads_a_read_only_distfiles_folder(tmp_path):
    from conftest import make_tar, sha
    from toolchain.sources.fetch import Fetcher
    from toolchain.sources.recipes import Location
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "musl-toolchain-test", str(ro)],
                      capture_output=True, stdin=subprocess.DEVNULL).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        data = make_tar({"a": b"1"})
        (ro / "pkg-1.0.tar.gz").write_bytes(data)
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        loc = Location("url", "pkg-1.0.tar.gz", sha(data), "test", url="https://example.invalid/pkg-1.0.tar.gz")
        got = Fetcher(ro, offline=True).fetch((loc,), "pkg 1.0")
        assert got.path == ro / "pkg-1.0.tar.gz"
    finally:
        subprocess.run(["umount", str(ro)], check=True)


def test_sigterm_stops_the_build_commands_too(tmp_path):
    """A signal sent to the Python process alone (CI cancelling, `timeout`) must not leave a
    make running on behind it (the commands run in their own process groups)."""
    script = ("import sys; from pathlib import Path; from toolchain import interrupt; "
              "from toolchain.build import runner; interrupt.install(); "
              f"runner.run(['sh', '-c', 'sleep 300 & echo $! > pid; wait'], log=Path('{tmp_path}/log'), cwd=Path('{tmp_path}'))")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    pid_file = tmp_path / "pid"
    for _ in range(200):
        if pid_file.is_file() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    sleeper = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and err.strip().splitlines()[-1] == "terminated"
    for _ in range(100):
        if not Path(f"/proc/{sleeper}").exists() or "Z" in Path(f"/proc/{sleeper}/stat").read_text().split()[2]:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the command's child {sleeper} still runs after SIGTERM")
