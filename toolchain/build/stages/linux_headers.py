"""Linux's UAPI headers (<linux/...>, <asm/...>, <sound/...>, ...) in the sysroot, before gcc
is built (fixincludes reads the sysroot): the kernel's own `make headers` for the target's
kernel architecture, run with the build machine's cc, then the `.h` files copied. After gcc, a
gate compiles a program that includes them together with musl's and runs it."""
from __future__ import annotations

import os
import shutil

from ...checks import gates
from ..context import Build
from ..runner import Status, clean_dir
from ..stage import Stage
from ...say import say

GATE_FLAGS = ["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O2", "-static"]

# Where the kernel's make puts the sanitized headers, below its O= folder.
HEADERS = "usr/include"

# UAPI headers real programs and the C parts of Rust crates include, after the musl headers
# they are used with (the order libc-compat.h supports), built -Wall -Wextra -Werror.
# The asserts are the layouts the kernel reads and writes for this ABI: with musl's 64-bit
# time_t, 32-bit targets must get the kernel's time64 structures (input events carry the time
# as two longs; ALSA's status ioctls are the 64-bit-time ones).
GATE_PROGRAM = r"""#define _GNU_SOURCE
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/if_ether.h>
#include <sys/ioctl.h>
#include <sys/sysinfo.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>
#include <linux/if.h>
#include <linux/in6.h>
#include <linux/if_ether.h>
#include <linux/if_tunnel.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/ethtool.h>
#include <linux/kernel.h>
#include <linux/input.h>
#include <linux/i2c-dev.h>
#include <linux/i2c.h>
#include <linux/fs.h>
#include <linux/io_uring.h>
#include <linux/perf_event.h>
#include <linux/videodev2.h>
#include <linux/version.h>
#include <sound/asound.h>

_Static_assert(sizeof(time_t) == 8, "musl's time_t is 64-bit everywhere");
_Static_assert(sizeof(struct input_event) == 2 * sizeof(unsigned long) + 8,
               "struct input_event is not the kernel's layout for this ABI");
_Static_assert(sizeof(long) == 8 || SNDRV_PCM_MMAP_OFFSET_STATUS == SNDRV_PCM_MMAP_OFFSET_STATUS_NEW,
               "ALSA would map the old 32-bit-time status page");
_Static_assert(sizeof(struct snd_pcm_mmap_status) == 56 && offsetof(struct snd_pcm_mmap_status, tstamp) == 16,
               "ALSA's mmap'd status is not the kernel's layout");

int main(void) {
    struct ifreq ifr = {0};
    struct input_event ev = {0};
    struct io_uring_sqe sqe = {0};
    ev.type = EV_KEY;
    sqe.opcode = IORING_OP_NOP;
    printf("linux %d.%d headers%s\n", LINUX_VERSION_CODE >> 16, (LINUX_VERSION_CODE >> 8) & 0xff,
           ifr.ifr_name[0] == 0 && ev.type == EV_KEY && sqe.opcode == IORING_OP_NOP ? "" : " (broken)");
    return 0;
}
"""


def make_vars(b: Build) -> list[str]:
    return [f"ARCH={b.target.kernel_arch}", "HOSTCC=gcc"]


def run(b: Build, st: Status) -> None:
    sh = b.steps("linux_headers", st)
    obj = clean_dir(b.work / "obj-linux-headers")
    # O=: the shared, verified source tree is only read
    sh.run(b.make("-C", str(b.src("linux")), f"O={obj}", *make_vars(b), "headers"), cwd=obj,
           step="make headers")
    include = b.sysroot / "include"
    copied = 0
    for top, dirs, files in os.walk(obj / HEADERS):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".h") or name.startswith("."):
                continue   # make's own records (.install, ..install.cmd)
            src = os.path.join(top, name)
            dest = include / os.path.relpath(src, obj / HEADERS)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            copied += 1
    for needed in ("linux/types.h", "linux/version.h", "asm/unistd.h", "asm-generic/ioctl.h"):
        if not (include / needed).is_file():
            raise gates.GateError(f"{needed} was not installed", where=str(include),
                                  fix="read the log: make headers did not produce it")
    say(f"[{b.name}] linux_headers: {copied} headers of Linux {b.versions['linux'].version} "
        f"(ARCH={b.target.kernel_arch})")


def run_gate(b: Build, st: Status) -> None:
    """The UAPI headers with musl's: built -Wall -Werror, static, for the target, and run."""
    sh = b.steps("linux_headers_gate", st)
    test = clean_dir(b.work / "linux-headers-gate")
    (test / "uapi.c").write_text(GATE_PROGRAM)
    sh.run([b.tool("gcc"), *GATE_FLAGS, "uapi.c", "-o", "uapi"], cwd=test, step="build")
    gates.static_executable(test / "uapi", b.target)
    major, minor = b.versions["linux"].version.split(".")[:2]
    gates.runs([*b.runner, str(test / "uapi")], f"linux {major}.{minor} headers\n", where=str(test / "uapi"))


INSTALL = Stage("linux_headers", "Linux UAPI headers (make headers for the target's kernel arch) into the sysroot",
                run, reads=("linux",), config=lambda b: {"make": make_vars(b), "headers": HEADERS},
                makes="`<linux/...>`, `<asm/...>` in the sysroot's include",
                nice=10)   # short, and nothing waits for it before gcc_core (as binutils)
GATE = Stage("linux_headers_gate", "a program including many UAPI headers with musl's: -Wall -Werror, "
             "time64 layouts asserted, runs", run_gate, after=("gcc",),
             config=lambda b: {"program": GATE_PROGRAM, "flags": GATE_FLAGS, "runner": b.runner})
STAGES = (INSTALL, GATE)   # the gate needs gcc
