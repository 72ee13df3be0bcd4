#!/usr/bin/env python3
"""An emulator that crashes under guest I/O is restarted, and the guest keeps its disk.

The guest writes a fresh random pattern to /dev/vda, syncs, drops its caches and reads it back,
in a loop, while the test SIGKILLs qemu-storage-daemon three times. emud restarts it on the
socket it holds, QEMU's chardev reconnects, and:
  - every read returns the bytes just written (no mismatch, no I/O error);
  - the guest never loses /dev/vda, and the loop makes progress after each restart;
  - Restarts counts up, the pid changes, the state is plugged again;
  - the exit of the killed process is recorded (killed by signal SIGKILL).
"""

import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

IO_LOOP = r"""
i=0
while [ ! -e /tmp/stop ]; do
  dd if=/dev/urandom of=/tmp/p bs=4096 count=16 2>/dev/null
  dd if=/tmp/p of=/dev/vda bs=4096 count=16 conv=fsync 2>/dev/null || echo WRITE-ERROR $i
  echo 3 > /proc/sys/vm/drop_caches
  dd if=/dev/vda bs=4096 count=16 2>/dev/null | cmp -s - /tmp/p || echo MISMATCH $i
  i=$((i+1)); echo $i > /tmp/iter
done
echo DONE $i
"""


def status(emud, name):
    return json.loads(emud.emuctl("--json", "status", name, check=True).stdout)


def iterations(vm):
    rc, out = vm.run("cat /tmp/iter 2>/dev/null || echo 0")
    return int(out.strip() or 0)


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=1) as vm, t.Bus(wd) as bus, t.Emud(wd, bus) as emud:
        img = wd / "disk.img"
        t.image(img, 16 * 1024 * 1024)
        vm.wait_ready()
        emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
        emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}", check=True)
        t.poll_until(lambda: vm.run("test -b /dev/vda")[0] == 0, 30, "/dev/vda in guest")
        st = status(emud, "disk0")
        assert st["RestartPolicy"] == "on-failure", st

        with steps.step("guest I/O loop running"):
            (wd / "io.sh").write_text(IO_LOOP)
            rc, _ = vm.run(f"echo {IO_LOOP.encode().hex()} > /tmp/io.hex && "
                           "sed 's/../\\\\x&/g' /tmp/io.hex | xargs -0 printf > /tmp/io.sh && "
                           "(sh /tmp/io.sh > /tmp/io.log 2>&1 &)")
            assert rc == 0
            t.poll_until(lambda: iterations(vm) >= 2, 60, "guest I/O iterations")

        for n in range(1, 4):
            with steps.step(f"SIGKILL #{n}: restarted, same device, guest I/O goes on"):
                old = status(emud, "disk0")
                before = iterations(vm)
                os.kill(old["Pid"], signal.SIGKILL)
                t.poll_until(lambda: status(emud, "disk0")["Restarts"] == n, 30,
                             f"restart {n}")
                st = status(emud, "disk0")
                assert st["State"] == "plugged" and st["Pid"] != old["Pid"], st
                assert st["LastExit"] == "killed by signal SIGKILL", st
                assert st["ExitSignal"] == signal.SIGKILL, st
                assert t.wait_gone(old["Pid"], 5), "killed qsd not reaped"
                t.poll_until(lambda: iterations(vm) >= before + 3, 60,
                             "guest I/O progress after the restart")

        with steps.step("every read returned what was written; /dev/vda never lost"):
            vm.run("touch /tmp/stop")
            t.poll_until(lambda: "DONE" in vm.run("cat /tmp/io.log")[1], 60, "I/O loop end")
            rc, log = vm.run("cat /tmp/io.log")
            assert "MISMATCH" not in log and "WRITE-ERROR" not in log, log
            done = int(log.split("DONE")[1].split()[0])
            print(f"  {done} write/read cycles over 3 restarts, 0 mismatches")
            assert vm.run("test -b /dev/vda")[0] == 0
            names = {p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")}
            assert "emud-disk0" in names
            emud.emuctl("kill", "disk0", check=True)


t.main(test, needs=(t.QEMU, t.QSD))
