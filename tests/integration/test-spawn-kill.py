#!/usr/bin/env python3
"""The first vertical slice, end to end, with real binaries.

A private dbus-daemon, emud, a TCG guest under qemu-system-x86_64 with two pcie-root-ports, and
a real qemu-storage-daemon spawned by emud:
  - spawn: QEMU lists the device (qom-list on the test's own monitor), the state is `plugged`,
    the D-Bus object is introspectable, and the guest reads the bytes the test wrote;
  - kill: DEVICE_DELETED, the qsd process is gone (not a zombie), its socket is gone;
  - the VM's QEMU quits under a plugged emulator: emud stops the emulator and marks the VM lost.
"""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

IMG_SIZE = 16 * 1024 * 1024


def make_image(path, pattern):
    t.image(path, IMG_SIZE, pattern)


def emulators(emud):
    return json.loads(emud.emuctl("--json", "list", check=True).stdout)


def peripherals(vm):
    return {p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")}


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=2) as vm, t.Bus(wd) as bus, t.Emud(wd, bus) as emud:
        with steps.step("guest ready"):
            vm.wait_ready()
        with steps.step("vm-add registers the VM"):
            r = emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
            vms = json.loads(emud.emuctl("--json", "vm-list", check=True).stdout)
            assert vms == [{"name": "vm1", "qmp": str(vm.qmp_path), "state": "connected"}], vms

        pattern = b"EMUD-E2E-" + secrets.token_hex(8).encode()
        img = wd / "disk0.img"
        make_image(img, pattern)

        with steps.step("spawn plugs a qemu-storage-daemon into the VM"):
            r = emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}",
                            check=True)
            print(r.stdout, end="")
            [e] = emulators(emud)
            assert e["id"] == "disk0" and e["vm"] == "vm1" and e["state"] == "plugged", e
            assert e["kind"] == "vhost-user-blk" and e["restarts"] == 0, e
            pid = e["pid"]
            assert t.proc_state(pid) not in (None, "Z"), f"qsd {pid} is not running"
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert cmdline[0] == b"/usr/bin/qemu-storage-daemon", cmdline
            assert "emud-disk0" in peripherals(vm), peripherals(vm)
            sock = emud.runtime_dir / "vm" / "vm1" / "disk0.vu.sock"
            assert sock.is_socket(), f"{sock} missing"

        with steps.step("the emulator is confined: no caps, no_new_privs, seccomp, own pid ns"):
            status = dict(line.split(":", 1) for line in
                          Path(f"/proc/{pid}/status").read_text().splitlines())
            assert status["CapEff"].strip() == "0000000000000000", status["CapEff"]
            assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"
            assert status["Uid"].split()[0] != "0", status["Uid"]
            assert status["NSpid"].split()[-1] == "1", status["NSpid"]    # pid 1 inside
            assert os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
            assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")

        with steps.step("the emulator gets only its fds and a clean environment"):
            fds = sorted(int(n) for n in os.listdir(f"/proc/{pid}/fd"))
            # 0-2 and the two passed fds (monitor, listening socket); qsd itself may open
            # more (the image, eventfds, the vhost-user connection), none of them emud's.
            for fd in fds:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                assert "emud.log" not in target and "notify.sock" not in target, (fd, target)
            assert Path(f"/proc/{pid}/environ").read_bytes() == b"", "environment not empty"

        with steps.step("the D-Bus object is introspectable and shows the state"):
            r = subprocess.run(["busctl", "--user", "introspect", "org.emud.Manager1",
                                "/org/emud/emulator/disk0"], capture_output=True, text=True,
                               env={"DBUS_SESSION_BUS_ADDRESS": bus.address,
                                    "PATH": os.environ["PATH"]})
            assert r.returncode == 0, r.stderr
            assert "org.emud.Emulator1" in r.stdout and '"plugged"' in r.stdout, r.stdout
            st = json.loads(emud.emuctl("--json", "status", "disk0", check=True).stdout)
            assert st["State"] == "plugged" and st["Pid"] == pid and st["Slot"] == "rp1", st

        with steps.step("the guest reads the bytes the host wrote"):
            t.poll_until(lambda: vm.run("test -b /dev/vda")[0] == 0, 30, "/dev/vda in guest")
            rc, out = vm.run(f"dd if=/dev/vda bs=512 count=1 2>/dev/null | head -c {len(pattern)}")
            assert rc == 0 and out.encode() == pattern, (rc, out)

        with steps.step("kill unplugs: DEVICE_DELETED, process gone, socket gone"):
            emud.emuctl("kill", "disk0", check=True)
            vm.qmp.wait_event("DEVICE_DELETED", lambda ev: ev["data"].get("device") ==
                              "emud-disk0", timeout=5)
            assert t.wait_gone(pid, 5), f"qsd {pid} still there: {t.proc_state(pid)}"
            assert not sock.exists(), f"{sock} left behind"
            assert emulators(emud) == []
            assert "emud-disk0" not in peripherals(vm)
            rc, _ = vm.run("test -b /dev/vda")
            assert rc != 0, "guest still has /dev/vda"
            chardevs = [c["label"] for c in vm.qmp.cmd("query-chardev")]
            assert "emud-disk0-chr" not in chardevs, chardevs

        with steps.step("a second spawn reuses the freed slot"):
            emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk1", f"image={img}",
                        "readonly=on", check=True)
            [e] = emulators(emud)
            assert e["state"] == "plugged"
            pid = e["pid"]
            t.poll_until(lambda: vm.run("test -b /dev/vda")[0] == 0, 30, "/dev/vda again")
            rc, out = vm.run("cat /sys/block/vda/ro")
            assert out.strip() == "1", f"readonly=on disk is writable in the guest: {out}"

        with steps.step("QEMU going away stops the emulator and marks the VM lost"):
            vm.stop()
            assert t.wait_gone(pid, 10), f"qsd {pid} survived its VM"
            t.poll_until(lambda: emulators(emud) == [], 10, "emulator list to empty")
            vms = json.loads(emud.emuctl("--json", "vm-list", check=True).stdout)
            assert vms[0]["state"] == "lost", vms
            emud.emuctl("vm-remove", "vm1", check=True)
            assert not (emud.runtime_dir / "vm" / "vm1").exists()

        with steps.step("SIGTERM ends emud cleanly"):
            assert emud.stop() == 0, emud.log()
            assert "critical" not in emud.log(), emud.log()


t.main(test, needs=(t.QEMU, t.QSD))
