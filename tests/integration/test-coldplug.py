#!/usr/bin/env python3
"""Cold-plug: emulators prepared for a VM whose QEMU is not running yet.

1. emuctl prepare --qmp PATH readies a vhost-user-blk disk and prints QEMU's arguments; QEMU is
   started with them, emud connects when its QMP socket accepts, finds the device and calls it
   plugged; the guest reads the image's bytes; a kill unplugs it like a hot-plugged one.
2. A VM that never comes: prepare, then vm-remove stops the prepared emulator: no process, no
   socket, no VM left.
3. Refusals: prepare into a running VM, a kind that needs getfd, spawn into a defined VM."""

import json
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402


def status(emud, eid):
    r = emud.emuctl("--json", "status", eid, check=True)
    return json.loads(r.stdout)


def test(steps):
    with t.Workdir() as wd, t.Bus(wd) as bus, t.Emud(wd, bus) as emud:
        pattern = b"EMUD-COLD-" + secrets.token_hex(8).encode()
        img = t.image(wd / "disk0.img", 16 << 20, pattern)
        qmp_path = wd / "qmp.sock"   # where t.VM's QEMU will listen for emud
        with steps.step("prepare prints QEMU's arguments; the emulator waits, prepared"):
            r = emud.emuctl("--json", "prepare", "--qmp", qmp_path, "vm1", "vhost-user-blk",
                            "disk0", f"image={img}", check=True)
            out = json.loads(r.stdout)
            args = out["qemu-args"]
            assert args[0] == "-chardev" and "reconnect=1" in args[1], args
            assert any(a.startswith("vhost-user-blk-pci,") and "bus=emud-disk0-port" in a
                       for a in args), args
            assert status(emud, "disk0")["State"] == "prepared"
            vms = emud.emuctl("vm-list", check=True).stdout
            assert "vm1" in vms and "defined" in vms, vms
            assert len(t.qsd_pids(wd)) == 1
            r = emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk9", f"image={img}",
                            "readonly=on", check=1)
            assert "emuctl prepare" in r.stderr, r.stderr
        with t.VM(wd, slots=1, extra_args=args) as vm:
            with steps.step("QEMU started with them: emud connects and finds it plugged"):
                t.poll_until(lambda: status(emud, "disk0")["State"] == "plugged", 30,
                             "disk0 plugged")
                devs = [d["name"] for d in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
                assert "emud-disk0" in devs, devs
            with steps.step("the guest reads the image's bytes"):
                vm.wait_ready()
                rc, got = vm.run(f"head -c {len(pattern)} /dev/vda")
                assert rc == 0 and pattern.decode() in got, (rc, got)
            with steps.step("refusals: prepare into a running VM"):
                r = emud.emuctl("prepare", "vm1", "vhost-user-blk", "disk1", f"image={img}",
                                check=1)
                assert "use spawn" in r.stderr, r.stderr
            with steps.step("QMP: __org.emud_prepare on vm1's proxy readies one for vm3"):
                proxy = t.QMP(emud.runtime_dir / "vm" / "vm1" / "qmp.sock")
                ret = proxy.cmd("__org.emud_prepare", vm="vm3", kind="vhost-user-blk",
                                id="disk3", options={"image": str(img), "readonly": "on"})
                assert ret["id"] == "disk3" and ret["qemu-args"][0] == "-chardev", ret
                try:
                    proxy.cmd("__org.emud_prepare", vm="vm1", kind="vhost-user-blk",
                              id="disk4", options={"image": str(img)})
                    raise AssertionError("prepare into the running vm1 was accepted")
                except t.QMPError as e:
                    assert "use spawn" in str(e), e
                proxy.close()
                assert status(emud, "disk3")["State"] == "prepared"
                emud.emuctl("vm-remove", "vm3", check=True)
                assert "disk3" not in emud.emuctl("list", check=True).stdout
            with steps.step("kill unplugs the cold-plugged device and stops qsd"):
                emud.emuctl("kill", "disk0", check=True)
                devs = [d["name"] for d in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
                assert "emud-disk0" not in devs, devs
                t.poll_until(lambda: not t.qsd_pids(wd), 10, "qsd gone")
        with steps.step("a VM that never comes: vm-remove stops its prepared emulator"):
            emud.emuctl("vm-remove", "vm1", check=True)   # QEMU has quit: the VM is lost
            emud.emuctl("prepare", "vm2", "vhost-user-blk", "disk2", f"image={img}", check=True)
            assert len(t.qsd_pids(wd)) == 1
            emud.emuctl("vm-remove", "vm2", check=True)
            assert not t.qsd_pids(wd), t.qsd_pids(wd)
            assert "disk2" not in emud.emuctl("list", check=True).stdout
            assert "vm2" not in emud.emuctl("vm-list", check=True).stdout
            assert not (emud.runtime_dir / "vm" / "vm2").exists()
        with steps.step("a restarted emud keeps a prepared emulator waiting"):
            emud.emuctl("prepare", "vm5", "vhost-user-blk", "disk5", f"image={img}",
                        check=True)
            pid = t.qsd_pids(wd)
            assert len(pid) == 1, pid
            emud.stop()
            with t.Emud(wd, bus) as emud2:
                st = status(emud2, "disk5")
                assert st["State"] == "prepared" and st["Pid"] == pid[0], st
                assert "defined" in emud2.emuctl("vm-list", check=True).stdout
                emud2.emuctl("vm-remove", "vm5", check=True)
                t.poll_until(lambda: not t.qsd_pids(wd), 10, "qsd gone")


t.main(test, needs=(t.QEMU, t.QSD))
