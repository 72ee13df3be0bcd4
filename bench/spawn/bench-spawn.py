#!/usr/bin/env python3
"""Spawn benchmark: spawn -> plugged for a confined qemu-storage-daemon through emud, against a
bare qemu-storage-daemon hot-plugged by this program itself with raw QMP, in the same run,
into the same VM (issue #4's target: at most 1.3x).

  baseline: fork/exec qsd with a held vhost-user socket and a QMP socketpair, wait for its
            greeting, then chardev-add + device_add on the VM's QMP monitor;
  emud:     `emuctl spawn` (D-Bus, validation, sandbox + seccomp setup, launch, greeting,
            slot search, chardev-add, device_add), timed end to end; the fixed cost of
            starting emuctl and one D-Bus round trip (`emuctl list`) is shown beside it;
  emud/QMP: the same spawn as a management tool on a kept connection would do it, with
            `__org.emud_spawn` on the VM's QMP proxy socket (it returns once plugged): no
            process start, no D-Bus.
Each round unplugs again (device_del with the guest, not timed), and times one `emuctl list`
for the fixed cost, so that drift hits all three alike. Run after building; EMUD_BIN and
EMUCTL_BIN name the binaries (default build/daemon/emud, build/cli/emuctl), BENCH_ROUNDS the
rounds. bench-sandbox (built next to this file) splits the emulator's own start-up by step.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import emudtest as t  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "15"))


def bare_round(vm, wd, img, n):
    sock = wd / f"bare{n}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock))
    listener.listen(1)
    ours, theirs = socket.socketpair()
    t0 = time.monotonic()
    p = subprocess.Popen(
        [t.QSD, "--chardev", f"socket,id=m,fd={theirs.fileno()}", "--monitor", "chardev=m",
         "--blockdev", f"driver=file,node-name=f,filename={img}",
         "--blockdev", "driver=raw,node-name=d,file=f",
         "--export", f"type=vhost-user-blk,id=e,node-name=d,writable=on,"
                     f"addr.type=fd,addr.str={listener.fileno()}"],
        pass_fds=[theirs.fileno(), listener.fileno()], stderr=subprocess.DEVNULL)
    theirs.close()
    q = t.QMP(sock=ours)
    vm.qmp.cmd("chardev-add", id=f"bc{n}", backend={"type": "socket", "data": {
        "addr": {"type": "unix", "data": {"path": str(sock)}}, "server": False,
        "reconnect": 1}})
    vm.qmp.cmd("device_add", driver="vhost-user-blk-pci", id=f"bd{n}", chardev=f"bc{n}",
               bus="rp1")
    dt = (time.monotonic() - t0) * 1000
    vm.qmp.cmd("device_del", id=f"bd{n}")
    vm.qmp.wait_event("DEVICE_DELETED", lambda ev: ev["data"].get("device") == f"bd{n}", 30)
    vm.qmp.cmd("chardev-remove", id=f"bc{n}")
    q.close()
    p.send_signal(signal.SIGTERM)
    p.wait()
    listener.close()
    sock.unlink(missing_ok=True)   # qsd may remove it itself
    return dt


def emud_round(emud, img, n):
    t0 = time.monotonic()
    emud.emuctl("spawn", "vm1", "vhost-user-blk", f"s{n}", f"image={img}", check=True)
    dt = (time.monotonic() - t0) * 1000
    emud.emuctl("kill", f"s{n}", check=True)
    return dt


def qmp_round(proxy, emud, img, n):
    t0 = time.monotonic()
    proxy.cmd("__org.emud_spawn", kind="vhost-user-blk", id=f"q{n}",
              options={"image": str(img)})
    dt = (time.monotonic() - t0) * 1000
    proxy.cmd("__org.emud_kill", id=f"q{n}")
    return dt


def cli_round(emud):
    t0 = time.monotonic()
    emud.emuctl("list", check=True)
    return (time.monotonic() - t0) * 1000


def main():
    reason = t.qemu_usable(binaries=(t.QEMU, t.QSD), guest=False) or t.emud_usable()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    t.ensure_guest()
    with t.Workdir(prefix="emud-bench-") as wd, t.VM(wd, slots=1) as vm, t.Bus(wd) as bus:
        img = t.image(wd / "disk.img", 64 * 1024 * 1024)
        vm.wait_ready()
        with t.Emud(wd, bus) as emud:
            emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
            proxy = t.QMP(emud.emuctl("qmp-path", "vm1", check=True).stdout.strip())
            bare, confined, cli, viaqmp = [], [], [], []
            for n in range(ROUNDS):       # interleaved, so drift hits all alike
                bare.append(bare_round(vm, wd, img, n))
                confined.append(emud_round(emud, img, n))
                cli.append(cli_round(emud))
                viaqmp.append(qmp_round(proxy, emud, img, n))
            proxy.close()
        b, c, cli = statistics.median(bare), statistics.median(confined), statistics.median(cli)
        q = statistics.median(viaqmp)
        print(f"spawn -> plugged, median of {ROUNDS} rounds")
        print(f"  bare qsd + raw QMP hotplug (baseline) {b:7.1f} ms")
        print(f"  emud, confined qsd (emuctl spawn)     {c:7.1f} ms   {c / b:.2f}x")
        print(f"  of which emuctl start + one D-Bus round trip ~{cli:.1f} ms; "
              f"without it {(c - cli) / b:.2f}x")
        print(f"  emud, confined qsd (__org.emud_spawn on a kept QMP connection) "
              f"{q:7.1f} ms   {q / b:.2f}x")
        print(f"target <= 1.30x (QMP path): {'ok' if q / b <= 1.3 else 'MISSED'}")


if __name__ == "__main__":
    main()
