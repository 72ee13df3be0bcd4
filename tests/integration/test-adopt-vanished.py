#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Adoption when everything the state file names has vanished: emud rolls back, and lives.

Recipe: vm-add vm1, spawn disk0 (plugged). Then, while emud is down (SIGKILL), the emulator is
SIGKILLed and the VM's QEMU is replaced by a new QEMU on the same QMP path, which has never
heard of disk0. The next emud reads a state file that names a process that is gone and a
device that QEMU does not have. It must:
  - stay alive (and again after a second restart);
  - roll disk0 back: gone from `emuctl --json list`, from state.jsonl and from QEMU;
  - leave no socket in RUNTIME/vm/vm1/ but qmp.sock, and no qemu-storage-daemon;
  - still serve the VM: the same id spawns again into the new QEMU.

No guest is needed: spawn and the roll-back never ask the guest anything (the VM still boots
the test guest's kernel, since emudtest.VM always does, but nothing waits for it).
"""

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402




def alive(emud):
    """Raise with emud's exit and its log's tail if it has died."""
    rc = emud.proc.poll()
    if rc is not None:
        tail = "\n".join(emud.log().splitlines()[-30:])
        raise AssertionError(f"emud died (exit {rc}, signal {-rc if rc < 0 else 'none'}); "
                             f"log tail:\n{tail}")


def listing(emud):
    alive(emud)
    r = emud.emuctl("--json", "list", timeout=30)
    alive(emud)
    assert r.returncode == 0, f"emuctl list: exit {r.returncode}: {r.stderr}"
    return {e["id"]: e for e in json.loads(r.stdout)}


def state_emulators(emud):
    text = (emud.runtime_dir / "state.jsonl").read_text()
    return {e["emulator"]: e for e in map(json.loads, text.splitlines()) if "emulator" in e}


def peripherals(vm):
    return {p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")}


def vm_files(emud):
    return sorted(p.name for p in (emud.runtime_dir / "vm" / "vm1").iterdir())


def check_rolled_back(emud, vm, wd):
    t.poll_until(lambda: "disk0" not in listing(emud), 30, "disk0 rolled back",
                 interval=0.05, alive=lambda: alive(emud))
    # The state file is rewritten once per main-loop pass: give it a moment, bounded.
    t.poll_until(lambda: "disk0" not in state_emulators(emud), 10,
                 "disk0 gone from state.jsonl", interval=0.05, alive=lambda: alive(emud))
    assert "emud-disk0" not in peripherals(vm), peripherals(vm)
    chardevs = [c["label"] for c in vm.qmp.cmd("query-chardev")]
    assert "emud-disk0-chr" not in chardevs, chardevs
    assert vm_files(emud) in ([], ["qmp.sock"]), vm_files(emud)
    assert t.qsd_pids(wd) == [], f"orphan qemu-storage-daemon: {t.qsd_pids(wd)}"
    vms = json.loads(emud.emuctl("--json", "vm-list", check=True, timeout=30).stdout)
    assert [(v["name"], v["state"]) for v in vms] == [("vm1", "connected")], vms
    alive(emud)


def test(steps):
    t.become_subreaper()
    with t.Workdir() as wd, t.Bus(wd) as bus:
        img = t.image(wd / "disk0.img", 4 * 1024 * 1024)
        # Without a guest, the final unplug cannot complete: do not wait 10 s for it.
        conf = wd / "emud.conf"
        conf.write_text("[emud]\nunplug-timeout-ms=1000\n")
        vm = t.VM(wd, slots=2)
        emud = None
        try:
            emud = t.Emud(wd, bus, "--config", conf)
            with steps.step("vm-add and spawn disk0: plugged"):
                emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True, timeout=30)
                emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}",
                            check=True, timeout=30)
                e = listing(emud)["disk0"]
                assert e["state"] == "plugged", e
                assert "emud-disk0" in peripherals(vm)
                pid = e["pid"]

            with steps.step("while emud is down: SIGKILL qsd, a new QEMU on the same path"):
                emud.kill()
                os.kill(pid, signal.SIGKILL)
                assert t.wait_gone(pid, 5), f"qsd {pid} still there: {t.proc_state(pid)}"
                vm.stop()
                vm = t.VM(wd, slots=2)
                assert "emud-disk0" not in peripherals(vm)

            with steps.step("the next emud stays alive and rolls disk0 back"):
                emud = t.Emud(wd, bus, "--config", conf)
                check_rolled_back(emud, vm, wd)

            with steps.step("a second restart (SIGTERM) finds the same, and stays alive"):
                assert emud.stop() == 0, emud.log()
                emud = t.Emud(wd, bus, "--config", conf)
                # Settle: the VM reconnects, nothing is adopted.
                t.poll_until(lambda: json.loads(emud.emuctl(
                    "--json", "vm-list", check=True, timeout=30).stdout)[0]["state"] ==
                    "connected", 30, "vm1 connected", interval=0.05, alive=lambda: alive(emud))
                check_rolled_back(emud, vm, wd)

            with steps.step("the id and the slot are free again: spawn disk0 into the new QEMU"):
                emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}",
                            check=True, timeout=30)
                e = listing(emud)["disk0"]
                assert e["state"] == "plugged", e
                assert "emud-disk0" in peripherals(vm)
                assert t.qsd_pids(wd) == [e["pid"]], (t.qsd_pids(wd), e)

            with steps.step("cleanup: shutdown --stop-emulators leaves no process"):
                emud.emuctl("shutdown", "--stop-emulators", check=True, timeout=60)
                assert emud.stop() == 0, emud.log()
                assert t.qsd_pids(wd) == []
        finally:
            if emud is not None:
                emud.kill()
            vm.stop()


t.main(test, needs=(t.QEMU, t.QSD))
