#!/usr/bin/env python3
"""The emud demo: a VM, emud, and a sandboxed qemu-storage-daemon that emud hot-plugs into it.

Run through tests/run.sh demo (it installs and builds first). Everything is real: a TCG guest
(Debian's kernel and busybox, built from Debian packages on first use), a private D-Bus, emud,
emuctl and qemu-storage-daemon. It ends by itself and removes what it made.
"""

import json
import os
import secrets
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))
import emudtest as t  # noqa: E402


def say(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def shell(emud, *args):
    """Run emuctl as a user would and show the command and what it printed."""
    print(f"$ emuctl {' '.join(map(str, args))}", flush=True)
    r = emud.emuctl(*args)
    sys.stdout.write(r.stdout)
    sys.stdout.write(r.stderr)
    if r.returncode != 0:
        raise SystemExit(f"demo failed: emuctl exited {r.returncode}")
    return r


def main():
    reason = t.qemu_usable(binaries=(t.QEMU, t.QSD), guest=False) or t.emud_usable()
    if reason:
        raise SystemExit(f"demo cannot run: {reason}")
    say("building the test guest from Debian packages (first run only)")
    t.ensure_guest()

    with t.Workdir(prefix="emud-demo-") as wd:
        say("booting a VM: qemu-system-x86_64 (TCG), q35, shared memfd RAM, 2 pcie-root-ports")
        with t.VM(wd, slots=2) as vm, t.Bus(wd) as bus:
            vm.wait_ready()
            print(f"guest is up; QEMU pid {vm.pid}, QMP socket {vm.qmp_path}")

            say("starting emud on a private D-Bus")
            with t.Emud(wd, bus) as emud:
                print(f"emud pid {emud.pid}, runtime directory {emud.runtime_dir}")
                message = f"hello from the host, {secrets.token_hex(4)}"
                img = wd / "disk.img"
                t.image(img, 64 * 1024 * 1024, message.encode() + b"\n")
                print(f"wrote {message!r} at the start of {img}")

                say("registering the VM and spawning a vhost-user-blk emulator")
                shell(emud, "vm-add", "vm1", "--qmp", vm.qmp_path)
                shell(emud, "spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}")
                shell(emud, "list")
                pid = json.loads(emud.emuctl("--json", "status", "disk0").stdout)["Pid"]
                print(f"$ ps -o pid,user,cmd -p {pid}")
                os.system(f"ps -o pid,user,cmd -p {pid} | cut -c1-150")
                say("its confinement, as the host sees it (/proc/PID/status)")
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.split(":")[0] in ("Uid", "NSpid", "CapEff", "NoNewPrivs",
                                              "Seccomp"):
                        print(f"   {line}")
                print(f"   net namespace {os.readlink(f'/proc/{pid}/ns/net')} "
                      f"(emud's: {os.readlink('/proc/self/ns/net')})")

                say("what the guest sees")
                t.poll_until(lambda: vm.run("test -b /dev/vda")[0] == 0, 30, "/dev/vda")
                for cmd in ("cat /proc/partitions", "cat /sys/block/vda/size",
                            "head -n 1 /dev/vda"):
                    rc, out = vm.run(cmd)
                    print(f"guest# {cmd}\n{out}", end="" if out.endswith("\n") else "\n")
                rc, out = vm.run("head -n 1 /dev/vda")
                if out.strip() != message:
                    raise SystemExit(f"demo failed: the guest read {out!r}")
                print(f"-> the guest read the host's bytes: {out.strip()!r}")

                say("unplugging: device_del, DEVICE_DELETED, chardev-remove, SIGTERM, reap")
                shell(emud, "kill", "disk0")
                shell(emud, "list")
                gone = t.wait_gone(pid, 5)
                print(f"qemu-storage-daemon pid {pid}: {'gone' if gone else 'STILL THERE'}")
                rc, _ = vm.run("test -b /dev/vda")
                print(f"guest /dev/vda: {'gone' if rc else 'STILL THERE'}")
                if not gone or rc == 0:
                    raise SystemExit("demo failed: unplug left something behind")

                say("stopping emud and the VM")
            print("done; everything the demo made is removed")


if __name__ == "__main__":
    main()
