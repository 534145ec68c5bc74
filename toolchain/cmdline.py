"""What the user asked doit for: its command and the task names, read from the command line.

doit parses its arguments only after dodo.py is loaded, but the checks that must come before
any work (an unknown target, a missing host program) need them while it loads.
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from doit.cmd_base import DoitCmdBase, DodoTaskLoader
from doit.doit_cmd import DoitMain

from .build import registry
from .errors import ToolchainError
from .sources.recipes import Recipes, Version

# task families with a subtask per target, and with a subtask per selected package version
PER_TARGET = (*registry.BY_NAME, "sources", "toolchain")
PER_VERSION = ("fetch", "source")


def _doit_grammar() -> tuple[frozenset[str], frozenset[str]]:
    """doit's command names and every option of it that takes a value, from doit's own
    classes (so that a new doit option's value is never taken for a task name)."""
    def valued(options) -> set[str]:
        found = set()
        for o in options:
            if o.get("type") is not bool:
                found |= {f"-{o['short']}"} if o.get("short") else set()
                found |= {f"--{o['long']}"} if o.get("long") else set()
        return found
    commands, options = set(), set(valued(DodoTaskLoader.cmd_options)) | valued(DoitCmdBase.base_options)
    for cls in DoitMain.DOIT_CMDS:
        commands.add(cls.get_name())
        options |= valued(getattr(cls, "cmd_options", ()))
    return frozenset(commands), frozenset(options)


COMMANDS, VALUED_OPTIONS = _doit_grammar()


@dataclass(frozen=True)
class Request:
    command: str                 # doit's command: run (the default), list, info, ...
    tasks: tuple[str, ...]       # the task names (or patterns, or file targets) given to it


def parse(argv: list[str]) -> Request:
    """doit's command and task names from its arguments (argv without the program name).
    Options start with '-' (some take the next argument as their value); name=value are
    settings; the first other word is the command when doit has one of that name."""
    words, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUED_OPTIONS      # `-n 2`, not `-n2` or `--process=2`
        elif "=" not in arg:
            words.append(arg)
    if words and words[0] in COMMANDS:
        return Request(words[0], tuple(words[1:]))
    return Request("run", tuple(words))


def expand(request: Request, targets: list[str], versions: list[str]) -> list[tuple[str, str]]:
    """The (family, subtask) pairs the request names; a family alone means all its subtasks,
    a pattern with '*' all that match it (as doit does). Anything else is left to doit."""
    every = [(f, t) for f in PER_TARGET for t in targets] + [(f, v) for f in PER_VERSION for v in versions]
    every += [("download", ""), ("settings", "")]
    pairs = []
    for name in request.tasks:
        if "*" in name:
            pairs += [(f, s) for f, s in every if fnmatch.fnmatchcase(f"{f}:{s}" if s else f, name)]
        elif ":" in name:
            family, _, sub = name.partition(":")
            pairs += [(family, sub)] if family in PER_TARGET + PER_VERSION else []
        else:
            pairs += [(f, s) for f, s in every if f == name]
    return pairs


def workers(request: Request, recipes: Recipes, jobs: int) -> int:
    """doit's workers when its command line does not say (-n): one per toolchain the request
    builds and at least three when it builds any, at most jobs + 1; two otherwise. A
    toolchain starts with three chains that wait for nothing of each other (sources, then
    binutils; gmp, mpfr and mpc, gcc_libs; Linux's headers): with two workers the third
    waits, and when that is gcc_libs, its configure scripts run alone at the end with a core
    idle (seen: 38 s, aarch64). Later, ncurses beside Rust's std. All their makes share the
    jobserver's jobs - 1 tokens besides one job each, so a worker past jobs + 1 would only
    add compile jobs the cores cannot take."""
    builds = {sub for family, sub in expand(request, list(recipes.builds()), []) if family in PER_TARGET}
    wanted = max(len(builds), 3) if builds else 2
    return max(2, min(wanted, jobs + 1))


def check_names(request: Request, recipes: Recipes, selected: dict[str, Version]) -> None:
    """An unknown target or package version in a task name is one clear error, before any
    work (doit itself would only say 'Invalid parameter')."""
    if request.command in ("help", "dumpdb", "tabcompletion"):
        return
    builds, keys = recipes.builds(), [v.key for v in selected.values()]
    for family, sub in expand(request, list(builds), keys):
        name = f"{family}:{sub}"
        if family in PER_TARGET and sub not in builds:
            raise unknown_target(sub, list(recipes.targets), name, list(recipes.hosts))
        target = builds[sub][0] if family in PER_TARGET else None
        old = target.too_old(selected) if target else []
        if old:
            raise ToolchainError(f"target {target.name} needs newer versions than selected: {', '.join(old)}",
                                 where=target.where,
                                 fix="select newer ones, e.g. " + " ".join(
                                     f"{pkg}={recipes.packages[pkg].default}" for pkg, _ in target.minimum))
        if family in PER_VERSION and sub not in keys:
            package = next((p for p in recipes.packages if sub.startswith(p + "-")), "")
            version = sub[len(package) + 1:]
            listed = list(recipes.packages[package].versions) if package else []
            fix = (f"select it: doit {name} {package}={version}" if version in listed
                   else f"{package} versions in the recipes: {', '.join(listed)}" if package else "")
            raise ToolchainError(f"unknown package version {sub!r} in {name}; selected: {', '.join(keys)}",
                                 fix=fix)


def unknown_target(name: str, targets: list[str], where: str, hosts: list[str] = ()) -> ToolchainError:
    """The same error for a target named elsewhere (e.g. `python -m toolchain repro riscv64`)."""
    target, _, host = name.partition("@")
    if host and target in targets:
        return ToolchainError(f"unknown host {host!r} in {where}; hosts: {', '.join(hosts) or 'none'}",
                              fix=f"write {target} for the build machine, or {target}@<host> (recipes/targets.yaml hosts:)")
    return ToolchainError(f"unknown target {target!r} in {where}; targets: {', '.join(targets)}"
                          + (f" (each also as <target>@{' or @'.join(hosts)})" if hosts else ""))
