#!/usr/bin/env python3
"""vhost-user-fs: virtiofsd in emud's sandbox (enforce mode), hot-plugged into a running guest.

The guest mounts the share, reads bytes the host wrote, writes a file the host then reads, and
runs a workload of every kind of file operation; then virtiofsd is SIGKILLed, which leaves the
emulator failed (QEMU 7.2's vhost-user-fs cannot take a new backend, see the crash step), and
kill removes the device."""

import os
import secrets
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
# LEARN=FILE runs the same in seccomp learn mode and writes the learned policy to FILE; that
# is how policy/policies/vhost-user-fs.policy was made.
MODE = os.environ.get("LEARN") and "learn" or "enforce"
# Every kind of file operation the policy must allow; some may fail in the guest (chown to a
# uid the user namespace does not map), but none may get virtiofsd killed.
WORKLOAD = ("ls -la /mnt/fs; mkdir /mnt/fs/d; mv /mnt/fs/from-guest.txt /mnt/fs/d/x; "
            "cat /mnt/fs/d/x; rm -r /mnt/fs/d; ln -s a /mnt/fs/l; readlink /mnt/fs/l; "
            "rm /mnt/fs/l; ln /mnt/fs/from-host.txt /mnt/fs/h; rm /mnt/fs/h; touch /mnt/fs/t; "
            "chmod 600 /mnt/fs/t; chown 1:1 /mnt/fs/t; truncate -s 1M /mnt/fs/t; "
            "dd if=/dev/zero of=/mnt/fs/t bs=64k count=4 conv=fsync; "
            "touch -d 2020-01-01 /mnt/fs/t; mkfifo /mnt/fs/fifo; rm /mnt/fs/fifo /mnt/fs/t; "
            "sync; stat /mnt/fs; df /mnt/fs; true")


def virtiofsd_pids(wd):
    return [p for p in t.pids_with(VIRTIOFSD, str(wd))]


def test(steps):
    if not os.access(VIRTIOFSD, os.X_OK):
        raise t.Skip(f"{VIRTIOFSD} is not installed (Debian package qemu-system-common)")
    with t.Workdir() as wd, t.Bus(wd) as bus, t.VM(wd, slots=2) as vm, \
            t.Emud(wd, bus) as emud:
        share = wd / "share"
        share.mkdir()
        os.chmod(share, 0o777)
        host_bytes = "host-" + secrets.token_hex(8)
        (share / "from-host.txt").write_text(host_bytes)
        os.chmod(share / "from-host.txt", 0o644)
        with steps.step("guest ready, VM added"):
            vm.wait_ready()
            emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
        with steps.step("spawn vhost-user-fs (seccomp enforce)"):
            emud.emuctl("spawn", f"--seccomp={MODE}", "vm1", "vhost-user-fs", "fs0",
                        f"source={share}", "tag=share0", check=True)
            devs = [d["name"] for d in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
            assert "emud-fs0" in devs, devs
        with steps.step("guest mounts virtiofs and reads the host's bytes"):
            rc, out = vm.run("mkdir -p /mnt/fs && mount -t virtiofs share0 /mnt/fs && "
                             "cat /mnt/fs/from-host.txt", timeout=60)
            assert rc == 0 and host_bytes in out, (rc, out)
        guest_bytes = "guest-" + secrets.token_hex(8)
        with steps.step("guest writes a file the host reads"):
            rc, out = vm.run(f"echo {guest_bytes} > /mnt/fs/from-guest.txt && sync")
            assert rc == 0, out
            got = (share / "from-guest.txt").read_text().strip()
            assert got == guest_bytes, got
        with steps.step("file-operation workload: virtiofsd stays within its policy"):
            rc, out = vm.run(WORKLOAD, timeout=60)
            assert rc == 0, out
            st = status(emud, "fs0")
            assert st["State"] == "plugged", st
            assert not [k for k in st if k.startswith("Seccomp") and k != "SeccompMode"], st
            if MODE == "learn":
                Path(os.environ["LEARN"]).write_text(
                    emud.emuctl("policy", "dump", "fs0", check=True).stdout)
        with steps.step("crash: virtiofsd SIGKILLed is reported failed, not restarted"):
            # QEMU 7.2's vhost-user-fs cannot take a new backend: with a reconnecting chardev
            # a restarted virtiofsd got the connection but QEMU logged "vhost VQ 1 ring
            # restore failed" and the guest's next read hung. So the kind says restart=no
            # and reconnect=false, and a crash leaves it failed with the reason.
            pid = int(status(emud, "fs0")["Pid"])
            os.kill(pid, signal.SIGKILL)
            t.poll_until(lambda: status(emud, "fs0")["State"] == "failed", 20, "failed")
            st = status(emud, "fs0")
            assert "SIGKILL" in st.get("Reason", ""), st
            assert st["Restarts"] == "0", st
            assert t.proc_state(pid) in (None, "Z"), pid
            r = emud.emuctl("spawn", "--restart=on-failure", "vm1", "vhost-user-fs", "fs1",
                            f"source={share}", "tag=x", check=1)
            assert "restart=on-failure is not possible" in r.stderr, r.stderr
        with steps.step("kill: the device leaves QEMU, virtiofsd is gone"):
            emud.emuctl("kill", "fs0", check=True)
            devs = [d["name"] for d in vm.qmp.cmd("qom-list", path="/machine/peripheral")]
            assert "emud-fs0" not in devs, devs
            assert not virtiofsd_pids(wd), virtiofsd_pids(wd)


def status(emud, eid):
    out = emud.emuctl("status", eid, check=True).stdout
    return {k.strip(): v.strip() for k, v in
            (line.split(":", 1) for line in out.splitlines() if ":" in line)}


t.main(test, needs=(t.QEMU,))
