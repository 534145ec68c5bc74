"""doit task metadata. Creators only describe tasks: no network, no file work at load time."""
from __future__ import annotations

import dataclasses

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from .sources import recipes as recipes_mod
from . import cmdline, settings as settings_mod
from .build import context, executor, registry
from .sources import store
from .errors import ToolchainError
from .sources.recipes import Recipes, Version
from .settings import Settings
from .say import say

DEP_FILE = ".doit-toolchain.db"


class Context:
    """Everything the task creators need, loaded and validated once per doit run."""

    def __init__(self, cmdline: dict[str, str] | None = None, env: dict[str, str] | None = None):
        self.settings: Settings = settings_mod.load(cmdline, env)
        self.recipes: Recipes = recipes_mod.load(self.settings.recipes)
        self.versions: dict[str, Version] = self.recipes.select(self.settings.versions)

    def doit_config(self, request: cmdline.Request | None = None) -> dict:
        config = {
            "dep_file": str(self.settings.out / DEP_FILE),
            "backend": "sqlite3",         # tolerates two doit runs sharing the out folder
            "verbosity": 2,
            "default_tasks": ["settings"],
            "action_string_formatting": "new",
        }
        if request is not None:     # doit -n N on the command line still wins over this default
            config["num_process"] = cmdline.workers(request, self.recipes, self.settings.jobs)
        return config


def _guarded(fn, *args):
    """Run a stage; a ToolchainError becomes one clean doit failure message."""
    try:
        fn(*args)
    except ToolchainError as e:
        return TaskFailed(str(e))
    except OSError as e:   # a full disk, a folder that became read-only: no traceback for that
        where = f"{e.filename}: " if e.filename else ""
        return TaskFailed(f"{where}{e.strerror or e}\n  fix: check the free space and permissions there, "
                          "then run again (finished stages are kept)")
    return None


def _recipe_facts(version: Version) -> dict:
    """What the fetch of a version reads from its recipe (line numbers excluded)."""
    def loc(l):
        return {k: v for k, v in dataclasses.asdict(l).items() if k not in ("where", "hash_from")}
    return {"locations": [loc(l) for l in version.locations],
            "remote_patches": {p.file: [loc(l) for l in p.locations] for p in version.patches if p.remote}}


def fetch_tasks(ctx: Context):
    s = ctx.settings
    for version in ctx.versions.values():
        yield {
            "name": version.key,
            "doc": f"download and verify {version.package} {version.version}",
            "actions": [(_guarded, [store.fetch, s, version])],
            "file_dep": [],
            "targets": [str(store.fetch_stamp(s, version))],
            "uptodate": [config_changed({"recipe": _recipe_facts(version), "distfiles": str(s.distfiles)}),
                         (lambda task, values, v=version: store.fetch_is_current(s, v))],
            "verbosity": 2,
        }


def source_tasks(ctx: Context):
    s = ctx.settings
    for version in ctx.versions.values():
        local = [str(p.path) for p in version.patches if not p.remote]
        yield {
            "name": version.key,
            "doc": f"unpack and patch {version.package} {version.version}",
            "actions": [(_guarded, [store.prepare, s, version])],
            "file_dep": [str(store.fetch_stamp(s, version))] + local,
            "targets": [str(store.tree_path(s, version) / store.MARKER)],
            "uptodate": [config_changed({"patches": [(p.file, p.only_for) for p in version.patches]})],
            "verbosity": 2,
        }


def download_task(ctx: Context) -> dict:
    return {
        "doc": "fill the distfiles folder with every selected source, for a later offline build",
        "actions": [(say, [f"all sources are verified in {ctx.settings.distfiles}; "
                           "build offline later with offline=1"])],
        "task_dep": [f"fetch:{v.key}" for v in ctx.versions.values()],
        "uptodate": [False],
        "verbosity": 2,
    }


def _builds(ctx: Context) -> list[context.Build]:
    """A Build per toolchain: each target for the build machine, and for each host."""
    return [context.Build(ctx.settings, target, ctx.versions, host)
            for target, host in ctx.recipes.builds().values()]


def _source_inputs(ctx: Context, stage, b: context.Build) -> list[tuple[str, str | None]]:
    """What a stage reads of the sources: their unpacked, patched trees (the source tasks);
    with a cache, their verified files and patches instead, and the stage makes the trees it
    reads itself (store.prepare) only when it builds: a restored toolchain unpacks nothing.
    The first stage, which looks the key up, needs every source's sha256 (all fetched).
    Each file with the task that makes it (None: a patch in the repo), in order of reads."""
    s = ctx.settings
    if not s.cache:
        return [(str(store.tree_path(s, ctx.versions[p]) / store.MARKER), f"source:{ctx.versions[p].key}")
                for p in stage.reads]
    versions = list(ctx.versions.values()) if stage.name == registry.first(b.kind) else [ctx.versions[p] for p in stage.reads]
    return [(str(store.fetch_stamp(s, v)), f"fetch:{v.key}") for v in versions] + \
        [(str(p.path), None) for v in versions for p in v.patches if not p.remote]


def stage_tasks(ctx: Context, name: str):
    """One build stage, a subtask per toolchain."""
    stage = registry.BY_NAME[name]
    for b in _builds(ctx):
        if b.kind not in stage.builds:
            continue
        after = registry.after(name, b.kind)
        inputs = _source_inputs(ctx, stage, b) + [(str(b.stamp(before)), f"{before}:{b.name}") for before in after]
        if not after:     # the toolchains it needs (stage 0, a canadian's twin), gates passed, come first
            inputs += [(str(n.stamp(registry.LAST)), f"{registry.LAST}:{n.name}") for n in b.needs]
        # with a cache, the first stage looks the toolchain up before any other stage may build;
        # an order (task_dep), not an input: its re-running does not make the others stale
        first = registry.first(b.kind)
        order = [f"{first}:{b.name}"] if ctx.settings.cache and name != first else []
        # the tasks that make the file_dep, named in the order they should start: from
        # file_dep alone (a set) doit would start them in an order that changes from run to run
        # (string hashes are salted per process); gcc_core's longest chain, gcc_libs, first
        order = list(dict.fromkeys(order + [task for _, task in inputs if task]))
        yield {
            "name": b.name,
            "doc": f"{name} stage for {b.triple}" + (f" ({b.host.doc})" if b.host else ""),
            "actions": [(_guarded, [executor.execute, b, name])],
            "file_dep": [file for file, _ in inputs],
            "task_dep": order,
            "targets": [str(b.stamp(name))],
            "uptodate": [config_changed(executor.stage_config(b, name))]
                        + ([(lambda task, values, b=b: executor.probe_unchanged(b, name))]
                           if stage.probe else []),
            "verbosity": 2,
        }


def sources_tasks(ctx: Context):
    """All source trees of a toolchain, fetched, verified and patched, nothing built."""
    keys = [v.key for v in ctx.versions.values()]
    for b in _builds(ctx):
        yield {
            "name": b.name,
            "doc": f"every source {b.triple} needs, verified, unpacked and patched",
            "actions": [(say, [f"{b.triple}: sources ready in {ctx.settings.sources} "
                               f"({', '.join(keys)})"])],
            "task_dep": [f"source:{k}" for k in keys],
            "uptodate": [False],
            "verbosity": 2,
        }


def toolchain_tasks(ctx: Context):
    last = registry.LAST
    for b in _builds(ctx):
        yield {
            "name": b.name,
            "doc": f"{b.triple} toolchain" + (f" ({b.host.doc})" if b.host else ""),
            "actions": [(say, [f"{b.triple}: toolchain ready in {b.prefix} "
                               f"(report {b.work / 'report.json'})"])],
            "file_dep": [str(b.stamp(last))],
            "uptodate": [False],
            "verbosity": 2,
        }


def settings_task(ctx: Context) -> dict:
    s = ctx.settings
    lines = [f"out       {s.out}", f"distfiles {s.distfiles}", f"mirrors   {' '.join(s.mirrors) or '-'}",
             f"jobs      {s.jobs}", f"offline   {int(s.offline)}   upstream {int(s.upstream)}   "
             f"debian {int(s.debian)} ({' '.join(s.debian_suites)})",
             "versions  " + " ".join(v.key for v in ctx.versions.values()),
             "targets   " + " ".join(ctx.recipes.targets),
             "hosts     build " + " ".join(f"{h.name} (toolchain:<target>@{h.name}: {h.doc})"
                                           for h in ctx.recipes.hosts.values()),
             "run `doit list` for tasks, `doit toolchain:<target>` to build"]
    return {"doc": "show settings and selected versions", "actions": [(say, ["\n".join(lines)])],
            "uptodate": [False], "verbosity": 2}

