"""Command line: `python -m toolchain doctor FILE...` (more commands may follow).

doctor prints, for each ELF file, its class, machine, float ABI, linkage, interpreter,
NEEDED, RUNPATH/RPATH, the newest glibc symbol version it needs, and a verdict in plain
words. Exit status: 0 when every file is a static or static-pie executable (portable to any
Linux of its architecture), 1 when one is not, 2 when one is not a readable ELF file.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import elf


def doctor(files: list[str]) -> int:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toolchain")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("doctor", help="is this binary static and portable? why not?")
    d.add_argument("files", nargs="+", metavar="FILE")
    args = parser.parse_args(argv)
    if args.command == "doctor":
        return doctor(args.files)
    return 2


if __name__ == "__main__":
    sys.exit(main())
