#!/usr/bin/env python3
"""vhost-user-gpu: cold-plug only, and QEMU needs KVM for it.

emuctl prepare starts /usr/lib/qemu/vhost-user-gpu (seccomp enforce) for a VM whose QEMU is not
running and prints the arguments; QEMU 7.2 refuses to hot-plug vhost-user-gpu-pci, so a spawn
into a running VM is refused with QEMU's reason. QEMU started (-S, KVM) with the printed
arguments realizes the device: emud finds it and calls it plugged, and QEMU lists it (qom-list,
info pci). No guest runs: KVM guests hang on these test machines, and under TCG QEMU refuses
the device ("requires kvm"); without a usable /dev/kvm that part is skipped, saying so. When
QEMU quits, emud stops vhost-user-gpu."""

import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

GPU = "/usr/lib/qemu/vhost-user-gpu"
MODE = os.environ.get("LEARN") and "learn" or "enforce"


def status(emud, eid):
    return json.loads(emud.emuctl("--json", "status", eid, check=True).stdout)


def kvm_usable():
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
        return True
    except OSError:
        return False


def test(steps):
    if not os.access(GPU, os.X_OK):
        raise t.Skip(f"{GPU} is not installed (Debian package qemu-system-gui)")
    with t.Workdir() as wd, t.Bus(wd) as bus, \
            t.Emud(wd, bus, env={"G_MESSAGES_DEBUG": os.environ.get("G_MESSAGES_DEBUG", "")}) as emud:
        qmp_path = wd / "gpu-vm.qmp"
        with steps.step("prepare: vhost-user-gpu runs and QEMU's arguments are printed"):
            r = emud.emuctl("--json", "prepare", f"--seccomp={MODE}", "--qmp", qmp_path,
                            "vm1", "vhost-user-gpu", "gpu0", check=True)
            args = json.loads(r.stdout)["qemu-args"]
            assert args[0] == "-chardev" and "reconnect" not in args[1], args
            assert any(a.startswith("vhost-user-gpu-pci,") for a in args), args
            st = status(emud, "gpu0")
            assert st["State"] == "prepared", st
            pid = st["Pid"]
        if not kvm_usable():
            emud.emuctl("vm-remove", "vm1", check=True)
            t.wait_gone(pid)
            raise t.Skip("/dev/kvm cannot be opened: QEMU 7.2 realizes vhost-user-gpu-pci "
                         "only under KVM")
        test_qmp = wd / "gpu-test.qmp"
        with steps.step("QEMU (KVM, -S) started with them realizes the device; emud: plugged"):
            argv = [t.QEMU, "-accel", "kvm", "-S", "-M", "q35,memory-backend=mem",
                    "-object", "memory-backend-memfd,id=mem,size=256M,share=on", "-m", "256M",
                    "-nodefaults", "-no-user-config", "-display", "none",
                    "-qmp", f"unix:{qmp_path},server=on,wait=off",
                    "-qmp", f"unix:{test_qmp},server=on,wait=off",
                    "-device", "pcie-root-port,id=rp1,chassis=1,slot=1", *args]
            with open(wd / "qemu.log", "wb") as log:
                qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)
            try:
                alive = lambda: qemu.poll() is None or (_ for _ in ()).throw(  # noqa: E731
                    RuntimeError(f"QEMU exited: {(wd / 'qemu.log').read_text()}"))
                qmp = t.QMP(test_qmp, timeout=30, alive=alive)
                t.poll_until(lambda: status(emud, "gpu0")["State"] == "plugged", 30,
                             "gpu0 plugged")
                devs = {d["name"]: d["type"] for d in
                        qmp.cmd("qom-list", path="/machine/peripheral")}
                assert devs.get("emud-gpu0") == "child<vhost-user-gpu-pci>", devs
                realized = qmp.cmd("qom-get", path="/machine/peripheral/emud-gpu0",
                                   property="realized")
                assert realized is True, realized
                qtree = qmp.cmd("human-monitor-command", **{"command-line": "info qtree"})
                assert 'dev: vhost-user-gpu-pci, id "emud-gpu0"' in qtree, qtree
                # Bus numbers behind a root port come from the firmware: let it run, then
                # the device shows in info pci (the guest's kernel is not needed).
                qmp.cmd("cont")

                def listed():
                    pci = qmp.cmd("human-monitor-command", **{"command-line": "info pci"})
                    return "Display controller" in pci and 'id "emud-gpu0"' in pci and pci
                pci = t.poll_until(listed, 30, "the GPU in info pci", interval=0.5)
                print(pci[pci.index("Display controller") - 40:][:200])
                r = emud.emuctl("spawn", "vm1", "vhost-user-gpu", "gpu1", check=1)
                assert "device_add vhost-user-gpu-pci" in r.stderr, r.stderr
                print("spawn into the running VM:", r.stderr.strip())
                assert "gpu1" not in emud.emuctl("list", check=True).stdout
                if MODE == "learn":
                    Path(os.environ["LEARN"]).write_text(
                        emud.emuctl("policy", "dump", "gpu0", check=True).stdout)
                assert status(emud, "gpu0")["SeccompReport"] == ""
            finally:
                t.stop_process(qemu)
        with steps.step("QEMU quits: emud stops vhost-user-gpu and forgets the emulator"):
            t.wait_gone(pid)
            t.poll_until(lambda: "gpu0" not in emud.emuctl("list", check=True).stdout, 20,
                         "gpu0 gone")


t.main(test, needs=(t.QEMU,), guest=False)
