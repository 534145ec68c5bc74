"""C and C++ hello-worlds linked -static and -static-pie: static ELF facts, and they run."""
from __future__ import annotations

from ...checks import gates
from ..context import Build
from ..runner import Status, clean_dir
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
    for compiler, source, greeting in programs(b):
        for kind in KINDS:
            exe = test / f"{source.replace('.', '-')}-{kind}"
            sh.run([b.tool(compiler), f"-{kind}", "-O2", source, "-o", exe.name], cwd=test,
                   step=f"{compiler} -{kind}")
            gates.static_executable(exe, b.target, kind=kind)
            gates.runs([*b.runner, str(exe)], greeting, where=str(exe))


STAGES = (
    Stage("hello", "C and C++ hello-worlds, -static and -static-pie: static ELF gates, run under qemu",
          run, after=("gcc",),
          config=lambda b: {"programs": [HELLO_C, HELLO_CXX, programs(b), KINDS], "runner": b.runner}),
)
