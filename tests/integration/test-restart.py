#!/usr/bin/env python3
"""emud stopped and started again while the VM and its emulators stay up.

- SIGTERM: emud says STOPPING=1 and exits 0; the emulator keeps running and stays plugged
  (emulators belong to their VMs); the guest still reads its disk.
- A new emud on the same runtime directory adopts it from the state file: same pid, state
  plugged, and it can still be killed cleanly (DEVICE_DELETED, process gone, socket gone).
- `emuctl shutdown --stop-emulators` unplugs and stops every emulator, then emud exits.
"""

import json
import secrets
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402


def listing(emud):
    return json.loads(emud.emuctl("--json", "list", check=True).stdout)


def peripherals(vm):
    return {p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")}


def test(steps):
    t.become_subreaper()
    with t.Workdir() as wd, t.VM(wd, slots=2) as vm, t.Bus(wd) as bus:
        pattern = b"EMUD-RESTART-" + secrets.token_hex(8).encode()
        img = wd / "disk.img"
        t.image(img, 4 * 1024 * 1024, pattern)
        vm.wait_ready()

        emud = t.Emud(wd, bus)
        with steps.step("READY=1 and STATUS= on start"):
            assert any(n.startswith("READY=1") and "STATUS=0 VMs, 0 emulators" in n
                       for n in emud.notifications), emud.notifications
        emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
        emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}", check=True)
        [e] = listing(emud)
        pid = e["pid"]
        t.poll_until(lambda: vm.run("test -b /dev/vda")[0] == 0, 30, "/dev/vda in guest")

        with steps.step("SIGTERM: emud exits 0, the emulator stays running and plugged"):
            emud.proc.send_signal(signal.SIGTERM)
            emud.wait_notify("STOPPING=1")
            rc = emud.stop()
            assert rc == 0, f"exit {rc}\n{emud.log()}"
            assert t.proc_state(pid) not in (None, "Z"), "qsd died with emud"
            assert "emud-disk0" in peripherals(vm)
            state = (emud.runtime_dir / "state.jsonl").read_text()
            assert '"emulator":"disk0"' in state and f'"pid":{pid}' in state, state
            rc, out = vm.run(f"echo 3 > /proc/sys/vm/drop_caches; head -c {len(pattern)} "
                             "/dev/vda")
            assert out.encode() == pattern, out

        with steps.step("a new emud adopts it: same pid, plugged"):
            emud = t.Emud(wd, bus)
            t.poll_until(lambda: listing(emud) and listing(emud)[0]["state"] == "plugged", 10,
                         "disk0 adopted")
            [e] = listing(emud)
            assert e["pid"] == pid and e["id"] == "disk0", e
            assert "adopted the running process" in emud.log(), emud.log()
            vms = json.loads(emud.emuctl("--json", "vm-list", check=True).stdout)
            assert vms[0]["state"] == "connected", vms

        with steps.step("the adopted emulator is killed cleanly"):
            emud.emuctl("kill", "disk0", check=True)
            vm.qmp.wait_event("DEVICE_DELETED",
                              lambda ev: ev["data"].get("device") == "emud-disk0", timeout=5)
            assert t.wait_gone(pid, 5), f"qsd {pid}: {t.proc_state(pid)}"
            left = [p.name for p in emud.runtime_dir.rglob("*.sock")]
            assert left == ["qmp.sock"], left          # the VM's QMP proxy remains
            assert listing(emud) == []

        with steps.step("WATCHDOG=1 from the main loop when the service manager asks"):
            emud.stop()
            emud = t.Emud(wd, bus, env={"WATCHDOG_USEC": "200000"})
            emud.wait_notify("WATCHDOG=1", timeout=10)
            emud.wait_notify("WATCHDOG=1", timeout=10)

        with steps.step("shutdown --stop-emulators unplugs everything and exits"):
            emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk1", f"image={img}", check=True)
            [e] = listing(emud)
            r = emud.emuctl("shutdown", "--stop-emulators", check=True)
            assert "after stopping every emulator" in r.stdout, r.stdout
            vm.qmp.wait_event("DEVICE_DELETED",
                              lambda ev: ev["data"].get("device") == "emud-disk1", timeout=5)
            assert t.wait_gone(e["pid"], 5)
            assert emud.stop() == 0
            assert list(emud.runtime_dir.rglob("*.sock")) == []


t.main(test, needs=(t.QEMU, t.QSD))
