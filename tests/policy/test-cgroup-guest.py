#!/usr/bin/env python3
"""test-cgroup-parent again, in a guest whose cgroup2 hierarchy has every controller.

A hybrid host (memory and pids held by cgroup v1 hierarchies, as on the machines these tests
grew on) skips most of test-cgroup-parent. The test guest's kernel has no cgroup v1 mounted at
all, so there the binary runs every case: the guest's initramfs gets a second archive holding the
binary and the libraries ldd names, at the same paths, and the binary runs as root in the guest
with cgroup2 mounted at /sys/fs/cgroup."""

import gzip
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import emudtest as t  # noqa: E402

BINARY = os.environ.get("CGROUP_TEST", "")
GUEST_PATH = "/emud-test/test-cgroup-parent"


def newc(entries):
    """A cpio archive (newc, as the kernel unpacks initramfs) of (path, mode, data) entries."""
    out = bytearray()

    def add(name, mode, data):
        name_b = name.encode() + b"\0"
        fields = [len(out) // 4 + 1, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name_b)
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for name, mode, data in entries:
        add(name, mode, data)
    add("TRAILER!!!", 0, b"")
    return bytes(out)


def libraries(binary):
    """The shared objects binary loads, as ldd resolves them (the dynamic loader included)."""
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            paths.append(m[1])
    return paths


def guest_with_test(wd):
    """A guest dir: the test guest's kernel, and its initramfs plus one archive of ours."""
    files = {GUEST_PATH: BINARY}
    for lib in libraries(BINARY):
        files[lib] = lib
    dirs = set()
    for path in files:
        parent = Path(path).parent
        while str(parent) != "/":
            dirs.add(str(parent))
            parent = parent.parent
    entries = [(d.lstrip("/"), 0o040755, b"") for d in sorted(dirs)]
    entries += [(p.lstrip("/"), 0o100755, Path(src).resolve().read_bytes())
                for p, src in sorted(files.items())]
    d = Path(str(wd)) / "guest"
    d.mkdir()
    base = t.guest_dir()
    os.symlink(base / "vmlinuz", d / "vmlinuz")
    first = (base / "initrd.img").read_bytes()
    # Archives concatenate; the kernel skips zero padding between them.
    with open(d / "initrd.img", "wb") as f:
        f.write(first + b"\0" * (-len(first) % 4) + gzip.compress(newc(entries), 1))
    return d


def test(steps):
    with t.Workdir() as wd:
        with steps.step("initramfs with test-cgroup-parent and its libraries"):
            guest = guest_with_test(wd)
        with t.VM(wd, slots=0, guest=guest) as vm:
            with steps.step("guest ready"):
                vm.wait_ready()
            with steps.step("cgroup2 mounted, memory and pids in its root"):
                rc, out = vm.run("mount -t cgroup2 cgroup2 /sys/fs/cgroup && "
                                 "cat /sys/fs/cgroup/cgroup.controllers")
                assert rc == 0, out
                assert {"memory", "pids"} <= set(out.split()), out
            with steps.step("test-cgroup-parent: every case ran, none skipped, all passed"):
                rc, out = vm.run(f"{GUEST_PATH} --tap", timeout=120)
                print(out, flush=True)
                assert rc == 0, rc
                plan = re.search(r"^1\.\.(\d+)$", out, re.M)
                assert plan, "no TAP plan"
                results = re.findall(r"^(ok|not ok) \d+ .*$", out, re.M)
                oks = [ln for ln in out.splitlines() if re.match(r"ok \d+ ", ln)]
                assert len(results) == int(plan[1]) == len(oks), (plan[1], results)
                assert not any("# SKIP" in ln for ln in oks), oks
            with steps.step("nothing left in the guest's cgroup2 root"):
                rc, out = vm.run("ls /sys/fs/cgroup | grep emud-test; true")
                assert rc == 0 and out.strip() == "", out
            with steps.step("QEMU quits"):
                assert vm.stop() == 0


if __name__ == "__main__":
    if not BINARY or not os.access(BINARY, os.X_OK):
        t.skip("CGROUP_TEST does not name the test-cgroup-parent binary (run it through meson)")
    t.main(test, needs=(t.QEMU,))
