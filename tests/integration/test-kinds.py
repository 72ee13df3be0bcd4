#!/usr/bin/env python3
"""The kinds catalog: emud's descriptors, QEMU's vhost-user interop descriptors, availability.

1. With the repository's kinds: emuctl kinds lists blk, fs, gpu, multi-process SCSI and vfio-user,
   each with its source; vfio-user (and gpu without qemu-system-gui) unavailable with the reason;
   the installed 50-qemu-virtiofsd.json listed as unused because emud's own vhost-user-fs wins.
2. Without emud's own vhost-user-fs descriptor, the interop file becomes the kind vhost-user-fs;
   a guest mounts a share through it. Masking it with an empty file in $XDG_CONFIG_HOME and
   `emuctl reload` removes the kind (the running emulator keeps going); another interop file
   there brings it back on SIGHUP, with that file as its source; a broken one is listed unused
   with the reason."""

import json
import os
import shutil
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

SYSTEM_FS = Path("/usr/share/qemu/vhost-user/50-qemu-virtiofsd.json")
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"


def kinds(emud):
    rows = json.loads(emud.emuctl("--json", "kinds", check=True).stdout)
    return {(r["kind"], r["source"]): r for r in rows}


def by_kind(rows, kind):
    return [r for (k, _s), r in rows.items() if k == kind]


def test(steps):
    with t.Workdir() as wd, t.Bus(wd) as bus:
        with steps.step("the repository's kinds, their sources and availability"), \
                t.Emud(wd, bus) as emud:
            rows = kinds(emud)
            for k in ("vhost-user-blk", "vhost-user-fs", "vhost-user-gpu", "multiprocess-scsi",
                      "vfio-user-scsi"):
                got = by_kind(rows, k)
                assert got and got[0]["source"].startswith(str(t.REPO / "emulators")), (k, rows)
            assert by_kind(rows, "vhost-user-blk")[0]["status"] == "available"
            vfio = by_kind(rows, "vfio-user-scsi")[0]
            assert vfio["status"] == "unavailable" and "10.1" in vfio["note"], vfio
            gpu = by_kind(rows, "vhost-user-gpu")[0]
            if not os.access("/usr/lib/qemu/vhost-user-gpu", os.X_OK):
                assert gpu["status"] == "unavailable" and "qemu-system-gui" in gpu["note"], gpu
            if SYSTEM_FS.exists():
                unused = rows.get(("vhost-user-fs", str(SYSTEM_FS)))
                assert unused and unused["status"] == "unused", rows
                assert "vhost-user-fs.json" in unused["note"], unused
            r = emud.emuctl("prepare", "vmx", "vfio-user-scsi", "x", "image=/dev/null", check=1)
            assert "not available here" in r.stderr and "10.1" in r.stderr, r.stderr
            assert "vmx" not in emud.emuctl("vm-list", check=True).stdout

        if not SYSTEM_FS.exists() or not os.access(VIRTIOFSD, os.X_OK):
            raise t.Skip(f"{SYSTEM_FS} or {VIRTIOFSD} missing (Debian package "
                         "qemu-system-common)")
        own = wd / "kinds"
        own.mkdir()
        shutil.copy(t.REPO / "emulators" / "vhost-user-blk.json", own)
        shutil.copytree(t.REPO / "emulators" / "interop", own / "interop")
        xdg = wd / "xdg"
        user_dir = xdg / "qemu" / "vhost-user"
        user_dir.mkdir(parents=True)
        share = wd / "share"
        share.mkdir()
        os.chmod(share, 0o777)
        (share / "hello").write_text("interop-share")
        os.chmod(share / "hello", 0o644)
        with t.VM(wd, slots=2) as vm, \
                t.Emud(wd, bus, "--emulators-dir", own, env={"XDG_CONFIG_HOME": str(xdg)}) \
                as emud:
            with steps.step("no descriptor of emud's own: the interop file is the kind"):
                rows = kinds(emud)
                fs = rows.get(("vhost-user-fs", str(SYSTEM_FS)))
                assert fs and fs["status"] == "available", rows
            with steps.step("a guest mounts a share served through the interop kind"):
                vm.wait_ready()
                emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
                emud.emuctl("spawn", "vm1", "vhost-user-fs", "fs0", f"source={share}",
                            "tag=s0", check=True)
                rc, out = vm.run("mkdir -p /mnt/s && mount -t virtiofs s0 /mnt/s && "
                                 "cat /mnt/s/hello")
                assert rc == 0 and "interop-share" in out, out
            with steps.step("an empty file masks it; emuctl reload drops the kind"):
                (user_dir / SYSTEM_FS.name).write_text("")
                emud.emuctl("reload", check=True)
                assert not by_kind(kinds(emud), "vhost-user-fs"), kinds(emud)
                st = emud.emuctl("status", "fs0", check=True).stdout
                assert "plugged" in st, st
                rc, out = vm.run("cat /mnt/s/hello")
                assert rc == 0 and "interop-share" in out, out
            with steps.step("another interop file brings it back on SIGHUP; a broken one is "
                            "listed with its reason"):
                mine = user_dir / "60-mine.json"
                mine.write_text(json.dumps({"description": "mine", "type": "fs",
                                            "binary": VIRTIOFSD}))
                (user_dir / "70-broken.json").write_text("{not json")
                os.kill(emud.pid, signal.SIGHUP)
                t.poll_until(lambda: ("vhost-user-fs", str(mine)) in kinds(emud), 10,
                             "the kind from 60-mine.json")
                broken = kinds(emud).get(("-", str(user_dir / "70-broken.json")))
                assert broken and broken["status"] == "unused", kinds(emud)
            with steps.step("the emulator spawned from the old kind is still killed cleanly"):
                emud.emuctl("kill", "fs0", check=True)


t.main(test, needs=(t.QEMU,))
