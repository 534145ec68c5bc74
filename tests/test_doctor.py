"""`python -m toolchain doctor` on hostile and broken input: one line per bad file, status 2,
the other files still reported, never a traceback, never a hang or the whole file in memory."""
from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from toolchain.__main__ import doctor

ROOT = Path(__file__).resolve().parent.parent
ABI_TAG = b"\x04\x00\x00\x00\x10\x00\x00\x00\x01\x00\x00\x00GNU\x00"  # namesz 4, descsz 16, type 1


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> bytes:
    """A tiny static program from the host cc, or /bin/true without one."""
    tmp = tmp_path_factory.mktemp("bin")
    (tmp / "t.c").write_text("int main(void) { return 0; }\n")
    if shutil.which("cc") and subprocess.run(["cc", "-static", "-O2", "t.c", "-o", "t"], cwd=tmp,
                                             capture_output=True).returncode == 0:
        return (tmp / "t").read_bytes()
    return Path("/bin/true").read_bytes()


def run(capsys, *files) -> tuple[int, str, str]:
    status = doctor([str(f) for f in files])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def run_in_512_mib(*files) -> subprocess.CompletedProcess:
    """doctor in a process that cannot hold a big file in memory."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (512 << 20, 512 << 20)); "
            "from toolchain.__main__ import main; sys.exit(main(['doctor', *sys.argv[1:]]))")
    return subprocess.run([sys.executable, "-c", code, *map(str, files)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def with_section(data: bytes, sh_type: str, **fields) -> bytes:
    """data with the header of its first `sh_type` section changed."""
    elf = ELFFile(io.BytesIO(data))
    for i in range(elf.num_sections()):
        header = elf._get_section_header(i)
        if header.sh_type == sh_type:
            header.update(fields)
            at = elf.header.e_shoff + i * elf.header.e_shentsize
            return data[:at] + elf.structs.Elf_Shdr.build(header) + data[at + elf.structs.Elf_Shdr.sizeof():]
    pytest.skip(f"the test binary has no {sh_type} section")


def test_fuzzed_binaries_never_crash(binary, tmp_path, capsys):
    header = ELFFile(io.BytesIO(binary)).header
    end = min(len(binary), header.e_shoff + header.e_shnum * header.e_shentsize)
    table = (header.e_shoff, max(header.e_shoff + 1, end))  # the section header table
    rng = random.Random(12)
    path = tmp_path / "fuzzed"
    statuses = set()
    for case in range(300):
        data = bytearray(binary)
        if rng.random() < 0.15:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 8)):
                at = rng.randrange(*table) if rng.random() < 0.3 else rng.randrange(min(4096, len(data)))
                data[at] = rng.choice([0, 0xFF, 0x7F, 0x80, rng.randrange(256)])
        path.write_bytes(data)
        try:
            status, out, err = run(capsys, path)
        except Exception as e:  # noqa: BLE001 - name the case
            pytest.fail(f"case {case}: {e!r}")
        assert status in (0, 1, 2), case
        if status == 2:
            assert out == "" and err.count("\n") == 1 and err.startswith(f"{path}: "), (case, err)
        else:
            assert err == "" and out.startswith(f"{path}:\n"), (case, err)
        statuses.add(status)
    assert 2 in statuses and statuses & {0, 1}


def test_dev_zero_is_not_read():
    r = run_in_512_mib("/dev/zero")
    assert (r.returncode, r.stderr) == (2, "/dev/zero: not a regular file (a character device)\n")


def test_a_fifo_is_not_opened(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    result = []
    t = threading.Thread(target=lambda: result.append(doctor([str(fifo)])), daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # a writer comes and goes: the reader ends
        t.join(10)
        pytest.fail("doctor blocked opening a FIFO")
    assert result == [2]
    assert capsys.readouterr().err == f"{fifo}: not a regular file (a FIFO)\n"


def test_a_directory_and_missing_files(tmp_path, capsys):
    (tmp_path / "plain").write_text("x")
    status, out, err = run(capsys, tmp_path, tmp_path / "nothing", tmp_path / "plain" / "x")
    assert status == 2 and out == ""
    assert err.splitlines() == [f"{tmp_path}: not a regular file (a directory)",
                                f"{tmp_path / 'nothing'}: cannot read: No such file or directory",
                                f"{tmp_path / 'plain' / 'x'}: cannot read: Not a directory"]


def test_a_4_gib_file_is_not_read_whole(binary, tmp_path):
    big = tmp_path / "big"
    big.write_bytes(binary)
    os.truncate(big, 4 << 30)  # sparse: the headers and sections are the program's, the rest zeros
    r = run_in_512_mib(big)
    assert r.returncode in (0, 1) and r.stderr == "" and r.stdout.startswith(f"{big}:\n")


def test_an_unknown_machine_is_reported_as_its_number(binary, tmp_path, capsys):
    data = bytearray(binary)
    data[18:20] = (0x7777).to_bytes(2, "little" if data[5] == 1 else "big")
    (tmp_path / "odd").write_bytes(data)
    status, out, err = run(capsys, tmp_path / "odd")
    assert status in (0, 1) and err == ""
    assert "  machine      e_machine 0x7777\n" in out


@pytest.mark.parametrize("change", [(b"GNU\x00", b"BSD\x00"), (b"\x10\x00\x00\x00\x01", b"\x04\x00\x00\x00\x01")],
                         ids=["another OS", "short descriptor"])
def test_abi_tag_notes_that_are_not_gnu_linux(binary, tmp_path, capsys, change):
    if ABI_TAG not in binary:
        pytest.skip("the test binary has no little-endian NT_GNU_ABI_TAG note")
    at = binary.index(ABI_TAG)
    (tmp_path / "note").write_bytes(binary[:at] + ABI_TAG.replace(*change) + binary[at + len(ABI_TAG):])
    status, out, err = run(capsys, tmp_path / "note")
    assert status in (0, 1) and err == ""
    assert "  min. kernel  -\n" in out


def test_a_bad_file_among_good_ones(binary, tmp_path, capsys):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_bytes(binary)
    bad.write_bytes(with_section(binary, "SHT_NOTE", sh_offset=1 << 63))
    status, out, err = run(capsys, good, bad, good)
    assert status == 2
    assert out.startswith(f"{good}:\n") and out.count(f"\n{good}:\n") == 1 and out.count("verdict") == 2
    assert err.startswith(f"{bad}: damaged ELF file: section ") and err.count("\n") == 1
    assert err.endswith(" (SHT_NOTE) runs past the end of the file\n"), err


def test_lying_sizes_and_counts(binary, tmp_path):
    """A note section of 4 GiB inside a 4 GiB file, a huge e_shnum, a string table far away."""
    files = []
    for name, data in [("note", with_section(binary, "SHT_NOTE", sh_size=0xF000_0000)),
                       ("shnum", binary[:0x3C] + b"\xff\xfe" + binary[0x3E:] if binary[4] == 2 else binary),
                       ("strtab", with_section(binary, "SHT_STRTAB", sh_offset=0xFFFF_FFFF_0000))]:
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)
    os.truncate(files[0], 4 << 30)
    r = run_in_512_mib(*files)
    assert r.returncode in (0, 1, 2) and "Traceback" not in r.stderr
    assert r.stdout.startswith(f"{files[0]}:\n")  # the notes examined are the first few, then zeros
    assert len(r.stderr.splitlines()) + r.stdout.count("verdict") == 3, r.stderr
