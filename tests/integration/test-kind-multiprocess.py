#!/usr/bin/env python3
"""multiprocess-scsi: an LSI53C895A SCSI controller emulated by its own sandboxed QEMU process.

emud starts qemu-system-x86_64 -machine x-remote (seccomp enforce, no network), sends its end of
the socketpair to the VM's QEMU with getfd, and device_adds x-pci-proxy-dev on a root port. The
guest enumerates the proxied controller (PCI 1000:0012) and the sym53c8xx driver probes it. SCSI
I/O needs KVM's irqfd for the proxy's interrupts: under TCG the commands time out, so that part
runs only with EMUD_TEST_KVM=1 and a working /dev/kvm, and is skipped otherwise, saying so.
Also: restart=on-failure is refused for this kind, and the remote has no network but loopback.
Under TCG the guest's SCSI scan is set to manual first: a scan's commands would time out one by
one and hold the device against unplug; then a kill removes the device and the remote."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402


def status(emud, eid):
    out = emud.emuctl("status", eid, check=True).stdout
    return {k.strip(): v.strip() for k, v in
            (line.split(":", 1) for line in out.splitlines() if ":" in line)}


def test(steps):
    with t.Workdir() as wd, t.Bus(wd) as bus, t.VM(wd, slots=2) as vm, \
            t.Emud(wd, bus) as emud:
        pattern = b"EMUD-MPSCSI-PATTERN"
        img = t.image(wd / "scsi0.img", 16 << 20, pattern)
        with steps.step("guest ready, VM added"):
            vm.wait_ready()
            emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
            if os.environ.get("EMUD_TEST_KVM") != "1":
                # Under TCG the proxy's interrupts never arrive: a bus scan would time out
                # target after target (~41 s each) and hold the device against unplug.
                rc, out = vm.run("echo -n manual > /sys/module/scsi_mod/parameters/scan")
                assert rc == 0, out
        with steps.step("restart=on-failure and prepare are refused for a socketpair kind"):
            r = emud.emuctl("spawn", "--restart=on-failure", "vm1", "multiprocess-scsi",
                            "scsi9", f"image={img}", check=1)
            assert "restart=on-failure is not possible" in r.stderr, r.stderr
            r = emud.emuctl("prepare", "vmz", "multiprocess-scsi", "scsi8", f"image={img}",
                            check=1)
            assert "cannot be prepared" in r.stderr, r.stderr
            assert "vmz" not in emud.emuctl("vm-list", check=True).stdout
        with steps.step("spawn: remote QEMU started, x-pci-proxy-dev plugged (enforce)"):
            emud.emuctl("spawn", "--seccomp=enforce", "vm1", "multiprocess-scsi", "scsi0",
                        f"image={img}", check=True)
            devs = {d["name"]: d["type"] for d in
                    vm.qmp.cmd("qom-list", path="/machine/peripheral")}
            assert devs.get("emud-scsi0") == "child<x-pci-proxy-dev>", devs
            st = status(emud, "scsi0")
            assert st["State"] == "plugged" and "Socket" not in st, st
        pid = int(status(emud, "scsi0")["Pid"])
        with steps.step("the remote has no network but loopback"):
            ns = os.readlink(f"/proc/{pid}/ns/net")
            assert ns != os.readlink("/proc/self/ns/net"), ns
            # /proc/PID/net/dev lists the interfaces of the process's network namespace.
            lines = Path(f"/proc/{pid}/net/dev").read_text().splitlines()[2:]
            links = {line.split(":")[0].strip() for line in lines}
            assert links == {"lo"}, links
        with steps.step("the guest enumerates 1000:0012 and sym53c8xx probes it"):
            def probed():
                rc, out = vm.run("cat /proc/bus/pci/devices | cut -f2; dmesg | grep sym0")
                return "10000012" in out and "sym0:" in out and out
            out = t.poll_until(probed, 30, "the controller in the guest", interval=0.5)
            print("\n".join(line for line in out.splitlines() if "sym0" in line)[:800])
        if os.environ.get("EMUD_TEST_KVM") == "1":
            with steps.step("KVM: the guest reads the disk's bytes through the remote"):
                rc, out = vm.run(f"head -c {len(pattern)} /dev/sda", timeout=60)
                assert rc == 0 and pattern.decode() in out, out
        else:
            print("SKIP part: SCSI I/O through the proxy needs KVM's irqfd; this run uses TCG "
                  "(set EMUD_TEST_KVM=1 on a host whose KVM guests boot)", flush=True)
        with steps.step("kill removes the device and the remote process"):
            emud.emuctl("kill", "scsi0", check=True)
            devs = [d["name"] for d in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
            assert "emud-scsi0" not in devs, devs
            t.wait_gone(pid)
            assert "scsi0" not in emud.emuctl("list", check=True).stdout

t.main(test, needs=(t.QEMU,))
