#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Ids and VM names with '-' and '_' work end to end.

Names are 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-' (emuctl(1)), but neither '-' nor
'_' may appear raw in a D-Bus object path element: the path must come from sd_bus_path_encode
(disk-1 -> /org/emud/emulator/disk_2d1, disk_2 -> /org/emud/emulator/disk_5f2). With VM
vm-web_01 and emulators disk-1 and disk_2:
  - vm-add and spawn answer promptly (emuctl gets 30 s, so a hang is a failure, not a
    10-minute wait), list and status show them, and emud stays up;
  - the D-Bus objects are at the encoded paths (busctl tree, introspect, get-property);
  - QEMU has emud-disk-1 and emud-disk_2 with their chardevs;
  - the VM's QMP proxy (emuctl qmp-path) answers __org.emud_query-emulators;
  - kill (with the test guest booted, so that it releases the devices) and vm-remove leave
    nothing: no object, no device, no process, no file.
"""

import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

VM_NAME = "vm-web_01"
IDS = {"disk-1": "disk_2d1", "disk_2": "disk_5f2"}    # id -> encoded path element
TIMEOUT = 30


def emuctl(emud, *args):
    """emuctl that must succeed within TIMEOUT; a hang or a crash of emud fails clearly."""
    try:
        r = emud.emuctl(*args, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"emuctl {' '.join(map(str, args))}: no answer within "
                             f"{TIMEOUT}s (emud {'alive' if emud.proc.poll() is None else 'dead'})"
                             ) from None
    assert emud.proc.poll() is None, f"emud exited with {emud.proc.returncode}"
    assert r.returncode == 0, (f"emuctl {' '.join(map(str, args))}: exit {r.returncode}\n"
                               f"stdout: {r.stdout}\nstderr: {r.stderr}")
    return r


def busctl(bus, *args):
    r = subprocess.run(["busctl", f"--address={bus.address}", *args], capture_output=True,
                       text=True, timeout=TIMEOUT)
    assert r.returncode == 0, f"busctl {' '.join(args)}: {r.returncode}: {r.stderr}"
    return r.stdout




def peripherals(vm):
    return {p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")}


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=2) as vm, t.Bus(wd) as bus:
        conf = wd / "emud.conf"
        conf.write_text("[emud]\nunplug-timeout-ms=20000\n")
        imgs = {i: t.image(wd / f"{i}.img", 4 * 1024 * 1024) for i in IDS}
        with t.Emud(wd, bus, "--config", conf) as emud:
            with steps.step(f"vm-add {VM_NAME}"):
                emuctl(emud, "vm-add", VM_NAME, "--qmp", vm.qmp_path)
                vms = json.loads(emuctl(emud, "--json", "vm-list").stdout)
                assert [(v["name"], v["state"]) for v in vms] == [(VM_NAME, "connected")], vms

            for i in IDS:
                with steps.step(f"spawn {i} answers promptly and plugs"):
                    emuctl(emud, "spawn", VM_NAME, "vhost-user-blk", i, f"image={imgs[i]}")

            with steps.step("list and status show them plugged"):
                listed = {e["id"]: e for e in
                          json.loads(emuctl(emud, "--json", "list").stdout)}
                assert sorted(listed) == sorted(IDS), listed
                for i, e in listed.items():
                    assert e["vm"] == VM_NAME and e["state"] == "plugged", e
                    st = json.loads(emuctl(emud, "--json", "status", i).stdout)
                    assert st["Id"] == i and st["State"] == "plugged", st
                    assert st["Device"] == f"emud-{i}", st
                    sock = emud.runtime_dir / "vm" / VM_NAME / f"{i}.vu.sock"
                    assert st["Socket"] == str(sock) and sock.is_socket(), (st, sock)
                assert t.qsd_pids(wd) == sorted(e["pid"] for e in listed.values())

            with steps.step("D-Bus objects at the sd_bus_path_encode paths"):
                tree = busctl(bus, "tree", "--list", "org.emud.Manager1").split()
                for i, enc in IDS.items():
                    path = f"/org/emud/emulator/{enc}"
                    assert path in tree, (path, tree)
                    out = busctl(bus, "introspect", "org.emud.Manager1", path)
                    assert "org.emud.Emulator1" in out and '"plugged"' in out, out
                    got = busctl(bus, "get-property", "org.emud.Manager1", path,
                                 "org.emud.Emulator1", "Id").strip()
                    assert got == f's "{i}"', got
                    got = busctl(bus, "get-property", "org.emud.Manager1", path,
                                 "org.emud.Emulator1", "State").strip()
                    assert got == 's "plugged"', got

            with steps.step("QEMU has the devices and their chardevs"):
                names = peripherals(vm)
                chardevs = {c["label"] for c in vm.qmp.cmd("query-chardev")}
                for i in IDS:
                    assert f"emud-{i}" in names, names
                    assert f"emud-{i}-chr" in chardevs, chardevs

            with steps.step("the QMP proxy lists them (__org.emud_query-emulators)"):
                path = emuctl(emud, "qmp-path", VM_NAME).stdout.strip()
                assert path == str(emud.runtime_dir / "vm" / VM_NAME / "qmp.sock"), path
                with t.QMP(path, timeout=TIMEOUT) as proxy:
                    got = {e["id"]: e for e in proxy.cmd("__org.emud_query-emulators")}
                assert sorted(got) == sorted(IDS), got
                for i, e in got.items():
                    assert e["state"] == "plugged" and e["device"] == f"emud-{i}", e

            with steps.step("kill both (the guest releases them): everything gone"):
                vm.wait_ready()
                for i in IDS:
                    emuctl(emud, "kill", i)
                assert json.loads(emuctl(emud, "--json", "list").stdout) == []
                tree = busctl(bus, "tree", "--list", "org.emud.Manager1").split()
                assert not any(p.startswith("/org/emud/emulator/") for p in tree), tree
                names = peripherals(vm)
                chardevs = {c["label"] for c in vm.qmp.cmd("query-chardev")}
                for i in IDS:
                    assert f"emud-{i}" not in names, names
                    assert f"emud-{i}-chr" not in chardevs, chardevs
                assert t.poll_until(lambda: t.qsd_pids(wd) == [], 5, "no qsd left")
                left = sorted(p.name for p in (emud.runtime_dir / "vm" / VM_NAME).iterdir())
                assert left == ["qmp.sock"], left

            with steps.step(f"vm-remove {VM_NAME}: its directory goes"):
                emuctl(emud, "vm-remove", VM_NAME)
                assert not (emud.runtime_dir / "vm" / VM_NAME).exists()
                assert emud.stop() == 0, emud.log()


t.main(test, needs=(t.QEMU, t.QSD))
