"""Task graph of the musl cross-toolchain bootstrapper. Thin: the logic is in toolchain/.

    doit list                      tasks and their families
    doit toolchain:aarch64         fetch, verify, unpack and patch everything for aarch64
    doit download offline=0        fill the distfiles folder for a later offline=1 build
Settings are `name=value` arguments or TOOLCHAIN_<NAME> variables; see README.md.
"""
import sys

from doit import doit_cmd

from toolchain import cmdline, hosttools, interrupt
from toolchain.errors import ToolchainError
from toolchain.build import jobserver
from toolchain.build.registry import STAGES
from toolchain.tasks import (Context, download_task, fetch_tasks, settings_task, source_tasks,
                             sources_tasks, stage_tasks, toolchain_tasks)

# doit's command line, when doit loads this file (not when a test imports it). doit's public
# doit.get_var(name) gives one variable by name; to refuse a misspelt setting we need all of
# them, and doit (0.37) has no public way to list them: doit_cmd._CMDLINE_VARS is what
# get_var itself reads, a dict of the name=value arguments (None outside a doit run).
REQUEST = cmdline.parse(sys.argv[1:]) if doit_cmd._CMDLINE_VARS is not None else None
if REQUEST:
    interrupt.install()
    # doit's worker processes (doit -n) and this one share the terminal or pipe: a whole line
    # per write, so their lines never cut into each other
    sys.stdout.reconfigure(line_buffering=True)

try:
    CTX = Context(cmdline=doit_cmd._CMDLINE_VARS or {})  # doit's parsed name=value arguments
    if REQUEST:
        cmdline.check_names(REQUEST, CTX.recipes, CTX.versions)
        for note in hosttools.check_request(REQUEST, CTX):  # before any download
            print(note, file=sys.stderr)
        jobserver.start(CTX.settings.jobs)    # before doit forks its workers (doit -n)
except ToolchainError as e:
    sys.exit(f"error: {e}")

DOIT_CONFIG = CTX.doit_config(REQUEST)


def task_settings():
    """show settings, selected versions and targets"""
    return settings_task(CTX)


def task_fetch():
    """download and verify a package version's source and remote patches"""
    yield from fetch_tasks(CTX)


def task_source():
    """unpack a verified source safely and apply its patches"""
    yield from source_tasks(CTX)


def task_download():
    """fetch every selected source into the distfiles folder (for offline builds)"""
    return download_task(CTX)


def task_sources():
    """every source a target needs: fetched, verified, unpacked, patched (nothing built)"""
    yield from sources_tasks(CTX)


def task_toolchain():
    """build the musl cross toolchain of a target"""
    yield from toolchain_tasks(CTX)


def _stage_family(name: str, doc: str):
    """doit's creator for one registered stage: a subtask per target, the stage's doc."""
    def creator():
        yield from stage_tasks(CTX, name)
    creator.__doc__ = doc
    return creator


for _stage in STAGES:   # one family per stage of the registry (toolchain/build/registry.py)
    globals()[f"task_{_stage.name}"] = _stage_family(_stage.name, _stage.doc)
