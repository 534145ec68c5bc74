"""Task graph of the musl cross-toolchain bootstrapper. Thin: the logic is in toolchain/.

    doit list                      tasks and their families
    doit toolchain:aarch64         fetch, verify, unpack and patch everything for aarch64
    doit download offline=0        fill the distfiles folder for a later offline=1 build
Settings are `name=value` arguments or TOOLCHAIN_<NAME> variables; see README.md.
"""
import sys

from doit import doit_cmd

from toolchain.errors import ToolchainError
from toolchain.tasks import (Context, download_task, fetch_tasks, settings_task, source_tasks,
                             toolchain_tasks)

try:
    CTX = Context(cmdline=doit_cmd._CMDLINE_VARS or {})  # doit's parsed name=value arguments
except ToolchainError as e:
    sys.exit(f"error: {e}")

CTX.settings.out.mkdir(parents=True, exist_ok=True)  # doit opens its dep file there
DOIT_CONFIG = CTX.doit_config()


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


def task_toolchain():
    """build the musl cross toolchain of a target"""
    yield from toolchain_tasks(CTX)
