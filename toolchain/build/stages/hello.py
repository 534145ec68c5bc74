"""C and C++ hello-worlds linked -static and -static-pie: static ELF facts, and they run."""
from __future__ import annotations

from pathlib import Path

from ...checks import elf, gates
from ..context import Build
from ..runner import Status, clean_dir
from ...sources.recipes import Target
from ..stage import Stage

HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello from C"); return 0; }\n'
HELLO_CXX = """#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>
int main() {
    std::string caught;
    std::thread worker([&] {   // an exception thrown and caught inside a thread: unwinder + TLS
        try { throw std::runtime_error("a thread"); }
        catch (const std::exception &e) { caught = e.what(); }
    });
    worker.join();
    std::cout << "hello from C++ and " << caught << std::endl;
    return 0;
}
"""
KINDS = ("static", "static-pie")
# link-time optimisation across two C files and a C++ one, linked -static: through ld's LTO
# plugin, or without it (a static ld loads no plugin) through collect2 and lto-wrapper
LTO_SOURCES = {
    "lto_twice.c": "int twice(int x) { return 2 * x; }\n",
    "lto_answer.c": "int twice(int);\nint answer(void) { return twice(21); }\n",
    "lto_main.cc": '#include <cstdio>\nextern "C" int answer(void);\n'
                   'int main() { std::printf("LTO says %d\\n", answer()); return 0; }\n',
}
LTO_FLAGS = ["-flto", "-O2"]


def abi_source(target: Target) -> str:
    """Compile-time checks that the compiler's ABI is the row's: pointer size, byte order, and
    the size of long double musl's headers were written for."""
    order = "__ORDER_BIG_ENDIAN__" if target.endian == "big" else "__ORDER_LITTLE_ENDIAN__"
    checks = [f"_Static_assert(sizeof(void *) * 8 == {target.elf_class}, \"pointer size\");",
              f"_Static_assert(__BYTE_ORDER__ == {order}, \"byte order\");"]
    if target.long_double:
        checks.append(f"_Static_assert(sizeof(long double) == {target.long_double}, \"long double\");")
    return "\n".join(checks) + "\n"


def programs(b: Build) -> list[tuple[str, str, str]]:
    """(compiler, source, what it prints) for the languages built."""
    found = [("gcc", "hello.c", "hello from C\n")]
    if "c++" in b.settings.languages:
        found.append(("g++", "hello.cc", "hello from C++ and a thread\n"))
    return found


def run(b: Build, st: Status) -> None:
    sh = b.steps("hello", st)
    test = clean_dir(b.work / "hello")
    (test / "hello.c").write_text(HELLO_C)
    (test / "hello.cc").write_text(HELLO_CXX)
    (test / "abi.c").write_text(abi_source(b.target))
    sh.run([b.tool("gcc"), "-c", "abi.c", "-o", "abi.o"], cwd=test, step="ABI facts")
    for compiler, source, greeting in programs(b):
        for kind in KINDS:
            exe = test / f"{source.replace('.', '-')}-{kind}"
            sh.run([b.tool(compiler), f"-{kind}", "-O2", source, "-o", exe.name], cwd=test,
                   step=f"{compiler} -{kind}")
            gates.static_executable(exe, b.target, kind=kind)
            gates.runs([*b.runner, str(exe)], greeting, where=str(exe))
    if "c++" in b.settings.languages:
        lto(b, sh, test)


def lto(b: Build, sh, test: Path) -> None:
    """-flto objects (GIMPLE inside, checked) linked -static into a program that runs."""
    objects = []
    for name, text in LTO_SOURCES.items():
        (test / name).write_text(text)
        obj = f"{name}.o"
        sh.run([b.tool("g++" if name.endswith(".cc") else "gcc"), *LTO_FLAGS, "-c", name, "-o", obj],
               cwd=test, step="-flto compile")
        if not elf.has_lto(test / obj):
            raise gates.GateError("has no .gnu.lto_ sections: -flto did not take effect", where=str(test / obj))
        objects.append(obj)
    sh.run([b.tool("g++"), *LTO_FLAGS, "-static", *objects, "-o", "lto"], cwd=test, step="-flto link")
    gates.static_executable(test / "lto", b.target, kind="static")
    gates.runs([*b.runner, str(test / "lto")], "LTO says 42\n", where=str(test / "lto"))


STAGES = (
    Stage("hello", "C and C++ hello-worlds, -static and -static-pie, and -flto: static ELF gates, run under qemu",
          run, after=("gcc",),
          config=lambda b: {"programs": [HELLO_C, HELLO_CXX, abi_source(b.target), programs(b), KINDS],
                            "lto": [LTO_SOURCES, LTO_FLAGS],
                            "runner": b.runner}),
)
