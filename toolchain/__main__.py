"""Command line: `python -m toolchain doctor FILE...`, `repro ...` and `key <toolchain>`.

doctor prints, for each ELF file, its class, machine, float ABI, linkage, interpreter,
NEEDED, RUNPATH/RPATH, the newest glibc symbol version it needs, and a verdict in plain
words. Exit status: 0 when every file is a static or static-pie executable (portable to any
Linux of its architecture), 1 when one is not, 2 when one is not a readable ELF file.

repro builds a target twice in two folders and compares the tarballs (see toolchain/repro.py).

key prints a toolchain's input key (toolchain/cache/key.py); --inputs, what it is made of.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .checks import elf
from .errors import ToolchainError


def doctor(files: list[str]) -> int:
    """Report each file, or say in one line on stderr why it cannot be (not a regular file, not
    ELF, damaged); a bad file never stops the others being reported, nor gives a traceback."""
    status = 0
    for name in files:
        try:
            f = elf.facts(Path(name))
        except elf.NotElf as e:
            print(f"{name}: {e.what}", file=sys.stderr)
            status = 2
            continue
        print(elf.report(f))
        if not f.portable and status == 0:
            status = 1
    return status


def _settings(parser: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    extra = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"setting {item!r} is not NAME=VALUE")
        extra[name] = value
    return extra


def print_key(name: str, settings: dict[str, str], show_inputs: bool) -> int:
    """The key of one toolchain (its sources must have been fetched: their sha256 is in it)."""
    import json
    from . import tasks
    from .cache import key
    try:
        ctx = tasks.Context(settings)
        b = _build(ctx, name)
        print(json.dumps(key.inputs(b), indent=1, sort_keys=True) if show_inputs else key.key(b))
        return 0
    except ToolchainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _build(ctx, name: str):
    from . import cmdline, tasks
    builds = {b.name: b for b in tasks._builds(ctx)}
    if name not in builds:
        raise cmdline.unknown_target(name, list(ctx.recipes.targets), name, list(ctx.recipes.hosts))
    return builds[name]


def push(name: str, settings: dict[str, str]) -> int:
    """Upload a toolchain already built in out (its package stage's stamp says its gates passed)."""
    from . import tasks
    from .build.registry import LAST
    from .cache import artifact, backends
    try:
        ctx = tasks.Context(settings)
        b = _build(ctx, name)
        if not ctx.settings.cache:
            raise ToolchainError("no cache= to push to", fix="e.g. cache=~/.cache/musl-toolchain/toolchains")
        if not b.stamp(LAST).is_file() or not artifact.dist_files(b)[0].is_file():
            raise ToolchainError(f"{name} is not built in {ctx.settings.out} (no package stamp or tarball)",
                                 fix=f"run `doit toolchain:{name} out={ctx.settings.out}` first")
        key = artifact.publish(b, backends.backend(ctx.settings.cache), ctx.settings.cache_key)
    except ToolchainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{name}: pushed to {ctx.settings.cache} as {key}" + ("" if ctx.settings.cache_key else " (unsigned)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolchain")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("doctor", help="is this binary static and portable? why not?")
    d.add_argument("files", nargs="+", metavar="FILE")
    r = sub.add_parser("repro", help="build a target twice in two folders; are the tarballs identical?")
    r.add_argument("target", help="e.g. aarch64")
    r.add_argument("--dir", required=True, type=Path, help="a new folder for the two builds")
    r.add_argument("--distfiles", required=True, type=Path, help="verified sources (shared by both)")
    r.add_argument("--from", dest="built", type=Path, metavar="OUT",
                   help="quick mode: rebuild musl, ncurses, libedit, rust std against copies of OUT's toolchain")
    r.add_argument("--parallel", action="store_true", help="full mode: run the two builds at once")
    r.add_argument("settings", nargs="*", metavar="NAME=VALUE", help="doit settings, e.g. jobs=2 gcc=15.3.0")
    k = sub.add_parser("key", help="the input key of a toolchain (what a cache looks it up by)")
    k.add_argument("target", help="e.g. aarch64, aarch64@portable")
    k.add_argument("--inputs", action="store_true", help="print what the key is made of (JSON) instead")
    k.add_argument("settings", nargs="*", metavar="NAME=VALUE", help="doit settings, e.g. out=out gcc=15.3.0")
    g = sub.add_parser("keygen", help="a new ed25519 key pair to sign cached toolchains")
    g.add_argument("name", help="the key's name, e.g. ci.example.org-1 (it is part of the public key)")
    g.add_argument("--out", required=True, type=Path, help="the secret key file to write (mode 0600); "
                   "the public key goes beside it (.pub) and to standard output")
    p = sub.add_parser("push", help="upload a built toolchain (all gates passed) to cache=")
    p.add_argument("target", help="e.g. aarch64, aarch64@portable")
    p.add_argument("settings", nargs="*", metavar="NAME=VALUE", help="out=, cache=, cache_key= ...")
    m = sub.add_parser("matrix", help="the release matrix (JSON for GitHub Actions' fromJSON) from targets.yaml")
    m.add_argument("--host", default="portable", help="build, or a row of hosts: in targets.yaml (default portable)")
    v = sub.add_parser("verify", help="rebuild the toolchain a tarball says it is; identical, or what differs")
    # a str: with --key, argparse hands the first NAME=VALUE here, and a Path would fold its //
    v.add_argument("tarball", nargs="?", help="a toolchain tarball (out/dist, a release, a cache restore)")
    v.add_argument("--key", help="instead of a tarball: the toolchain cached under this key in cache= "
                                 "(signed by a key in cache_trust=)")
    v.add_argument("--dir", required=True, type=Path, help="a new folder for the rebuild")
    v.add_argument("--distfiles", required=True, type=Path, help="verified sources")
    v.add_argument("settings", nargs="*", metavar="NAME=VALUE", help="doit settings, e.g. jobs=2")
    args, rest = parser.parse_known_args(argv)
    # NAME=VALUE settings may follow an option (`key aarch64 --inputs out=x`)
    if rest and (args.command in ("doctor", "keygen", "matrix") or not all("=" in r and not r.startswith("-") for r in rest)):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if rest:
        args.settings = [*args.settings, *rest]
    if args.command == "doctor":
        return doctor(args.files)
    if args.command == "keygen":
        from .cache import sign
        try:
            print(sign.keygen(args.name, args.out))
        except ToolchainError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"secret key in {args.out} (keep it secret: it signs what you push); trust the public key "
              "with cache_trust=<the line above>", file=sys.stderr)
        return 0
    if args.command == "matrix":
        from . import matrix
        from .sources import recipes
        try:
            known = recipes.load()
            if args.host != "build" and args.host not in known.hosts:
                raise ToolchainError(f"unknown host {args.host!r}", fix="choose build or one of: " + ", ".join(known.hosts))
        except ToolchainError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(matrix.as_json(known, args.host))
        return 0
    if args.command == "push":
        return push(args.target, _settings(parser, args.settings))
    if args.command == "key":
        return print_key(args.target, _settings(parser, args.settings), args.inputs)
    from . import cmdline, interrupt, repro
    from .sources import recipes
    if not (repro.ROOT / "dodo.py").is_file():
        print("error: repro builds with a checkout of musl-toolchain (its dodo.py, recipes/ and patches/); "
              "this command was installed without one\n  fix: run `.venv/bin/python -m toolchain repro ...` "
              "in the checkout", file=sys.stderr)
        return 2
    extra = _settings(parser, args.settings)
    if args.command == "verify":
        if args.key is not None and args.tarball is not None and "=" in args.tarball:
            extra = _settings(parser, [args.tarball, *args.settings])
            args.tarball = None
        if (args.tarball is None) == (args.key is None):
            parser.error("verify takes a tarball or --key KEY (with cache=), one of the two")
        try:
            tarball = Path(args.tarball).absolute() if args.key is None else \
                repro.from_cache(args.key, args.dir.absolute(), args.distfiles.absolute(), extra)
            return repro.verify(tarball, args.dir.absolute(), args.distfiles.absolute(), extra, args.key or "")
        except ToolchainError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    try:
        # the target is checked before any work (a full repro runs for an hour)
        recipes_dir = extra.get("recipes") or os.environ.get("TOOLCHAIN_RECIPES") or str(recipes.RECIPES_DIR)
        known = recipes.load(Path(recipes_dir).expanduser())
        if args.target not in known.builds():
            raise cmdline.unknown_target(args.target, list(known.targets), f"repro {args.target}", list(known.hosts))
        return repro.run(args.target, args.dir.absolute(), args.distfiles.absolute(), extra,
                         args.built.absolute() if args.built else None, args.parallel)
    except ToolchainError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return interrupt.EXIT_STATUS


if __name__ == "__main__":
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)    # `... | head` ends quietly, as other tools do
    sys.exit(main())
