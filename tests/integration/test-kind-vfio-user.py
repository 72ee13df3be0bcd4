#!/usr/bin/env python3
"""vfio-user-scsi: the lsi53c895a of multiprocess-scsi, served over vfio-user.

Needs qemu-system-x86_64 with the x-vfio-user-server object (QEMU built with libvfio-user) for the
remote and QEMU 10.1 or later for the vfio-user-pci client in the VM. Debian 12's QEMU 7.2 has
neither, so here the test checks that emud lists the kind unavailable with that reason, and
skips (exit 77) naming what is missing. Where both exist it spawns the kind and checks that
QEMU has the device."""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402


def qemu_version():
    out = subprocess.run([t.QEMU, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def test(steps):
    why = run(steps)
    if why:
        raise t.Skip(why)


def run(steps):
    """None when the kind ran, else why it cannot here."""
    with t.Workdir() as wd, t.Bus(wd) as bus, t.Emud(wd, bus) as emud:
        with steps.step("emuctl kinds says whether vfio-user-scsi can run, and why not"):
            rows = json.loads(emud.emuctl("--json", "kinds", check=True).stdout)
            row = [r for r in rows if r["kind"] == "vfio-user-scsi"][0]
            devices = subprocess.run([t.QEMU, "-device", "help"], capture_output=True,
                                     text=True).stdout
            client = "vfio-user-pci" in devices
        if row["status"] == "unavailable" or not client:
            assert row["status"] != "available" or not client, row
            return (f"{qemu_version()}: {row['note'] if row['status'] != 'available' else ''}"
                    f"{'' if client else ' (no vfio-user-pci device: QEMU >= 10.1 needed)'}")
        img = t.image(wd / "d.img", 16 << 20, b"VFIO-USER")
        with t.VM(wd, slots=1) as vm:
            vm.wait_ready()
            emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
            with steps.step("spawn: QEMU has the vfio-user-pci device"):
                emud.emuctl("spawn", "vm1", "vfio-user-scsi", "vfu0", f"image={img}",
                            check=True)
                devs = [d["name"] for d in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
                assert "emud-vfu0" in devs, devs
    return None


t.main(test, needs=(t.QEMU,), guest=False)
