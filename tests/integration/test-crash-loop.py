#!/usr/bin/env python3
"""An emulator that cannot come back is given up after the crash-loop limit, with the reason.

emud runs with a short backoff and a limit of 3 restarts. After the emulator is plugged, its
qcow2 image is overwritten with garbage and its process killed: every restart then exits at
once (qemu-storage-daemon: "Image is not in qcow2 format"). emud backs off (each delay longer than the last),
then leaves the emulator `failed` with the exit reason, and the device as it is in QEMU
(give-up-action=leave). The test does not unplug a device whose backend is dead: the guest
cannot flush it, and QEMU 7.2 stopped answering QMP after such a device_del here.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402


def status(emud, name):
    return json.loads(emud.emuctl("--json", "status", name, check=True).stdout)


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=2) as vm, t.Bus(wd) as bus:
        conf = wd / "emud.conf"
        conf.write_text("[emud]\nrestart-backoff-start-ms=50\nrestart-limit-burst=3\n"
                        "restart-limit-interval-ms=600000\ngive-up-action=leave\n")
        img = wd / "disk.img"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "4M"], check=True)
        os.chmod(img, 0o666)
        vm.wait_ready()
        with t.Emud(wd, bus, "--config", conf) as emud:
            emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
            emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}",
                        "format=qcow2", check=True)
            pid = status(emud, "disk0")["Pid"]

            with steps.step("restarts fail, back off, then the emulator is failed"):
                with open(img, "r+b") as f:
                    f.write(b"not a qcow2 image" * 64)
                os.kill(pid, signal.SIGKILL)
                t.poll_until(lambda: status(emud, "disk0")["State"] == "failed", 60,
                             "state failed")
                st = status(emud, "disk0")
                print(f"  reason: {st['Reason']}")
                assert "crash loop: 3 restarts" in st["Reason"], st
                assert "exited with status 1" in st["Reason"], st
                assert "Image is not in qcow2 format" in st["Reason"], st   # qsd's own words
                assert st["Restarts"] == 0 and st["Pid"] == 0, st
                assert st["ExitStatus"] == 1 and st["LastExit"] == "exited with status 1", st
                delays = [int(d) for d in re.findall(r"restarting in (\d+) ms", emud.log())]
                assert len(delays) == 3 and delays == sorted(delays) and \
                    len(set(delays)) == 3, delays
                assert t.wait_gone(pid, 5)

            with steps.step("the device is left in QEMU as it is"):
                names = {p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")}
                assert "emud-disk0" in names, names
                assert status(emud, "disk0")["State"] == "failed"

            with steps.step("restart=no: a crash leaves it failed at once"):
                img1 = wd / "disk1.img"
                t.image(img1, 4 * 1024 * 1024)
                emud.emuctl("spawn", "--restart=no", "vm1", "vhost-user-blk", "disk1",
                            f"image={img1}", check=True)
                st = status(emud, "disk1")
                assert st["RestartPolicy"] == "no", st
                os.kill(st["Pid"], signal.SIGKILL)
                t.poll_until(lambda: status(emud, "disk1")["State"] == "failed", 10, "failed")
                st = status(emud, "disk1")
                assert st["Restarts"] == 0 and "SIGKILL" in st["Reason"], st
                r = emud.emuctl("--json", "spawn", "--restart=sometimes", "vm1",
                                "vhost-user-blk", "disk2", f"image={img1}")
                assert json.loads(r.stderr)["error"] == "org.emud.Error.InvalidOption", r


t.main(test, needs=(t.QEMU, t.QSD))
