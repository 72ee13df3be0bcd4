#!/usr/bin/env python3
"""Supervision benchmark: restart latency, guest-visible stall, and emud's idle cost.

Prints, each against a baseline measured in the same run:
  1. crash-to-restarted: SIGKILL of qemu-storage-daemon until the new process answers on its
     QMP monitor (emud reports the restart), with restart-backoff-start-ms=1, against a bare
     qemu-storage-daemon's own exec-to-greeting time;
  2. the longest gap the guest sees between completed 4 KiB reads of /dev/vda across a
     restart, against the longest gap in the same loop without a restart (QEMU's chardev
     retries the connection once a second, reconnect=1, which bounds this from below);
  3. emud's RSS and wake-ups per second (voluntary context switches) while idle with 100
     supervised emulators in 4 VMs, against the same emud idle with none.
Run: python3 bench/supervision/bench-supervision.py (after building; uses build/).
"""

import json
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


def status(emud, name):
    return json.loads(emud.emuctl("--json", "status", name, check=True).stdout)


def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def bare_qsd_greeting_ms(wd, img, n=10):
    times = []
    for _ in range(n):
        ours, theirs = socket.socketpair()
        t0 = time.monotonic()
        p = subprocess.Popen([t.QSD, "--chardev", f"socket,id=m,fd={theirs.fileno()}",
                              "--monitor", "chardev=m", "--blockdev",
                              f"driver=file,node-name=f,filename={img},read-only=on"],
                             pass_fds=[theirs.fileno()], stderr=subprocess.DEVNULL)
        theirs.close()
        ours.recv(4096)
        times.append((time.monotonic() - t0) * 1000)
        p.kill()
        p.wait()
        ours.close()
    return statistics.median(times)


def restart_latency(wd, bus, vm, img):
    conf = wd / "fast.conf"
    conf.write_text("[emud]\nrestart-backoff-start-ms=1\nrestart-limit-burst=100\n"
                    "restart-limit-interval-ms=1\n")  # no backoff growth: the mechanism alone
    with t.Emud(wd, bus, "--config", conf) as emud:
        emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
        emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}", check=True)
        t.poll_until(lambda: vm.run("test -b /dev/vda")[0] == 0, 30, "/dev/vda")
        times = []
        for n in range(1, 11):
            pid = status(emud, "disk0")["Pid"]
            t0 = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            t.poll_until(lambda: status(emud, "disk0")["Restarts"] == n, 30, "restart",
                         interval=0.001)
            times.append((time.monotonic() - t0) * 1000)
        # Restarts this fast (QEMU's chardev only retries once a second) are a stress test
        # of QEMU's reconnect: report whether the guest can still read that disk.
        rc, _ = vm.run("timeout 20 dd if=/dev/vda of=/dev/null bs=4096 count=1 "
                       "iflag=direct 2>/dev/null || timeout 20 head -c 4096 /dev/vda >/dev/null",
                       timeout=60)
        rapid_ok = rc == 0
        # Guest-visible stall on a second, fresh disk, with the default backoff.
        emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk1", f"image={img}", check=True)
        stall = guest_stall(vm, emud)
        emud.kill()
    return times, stall, rapid_ok


GAP_LOOP = r"""
t0=$(cut -d' ' -f1 /proc/uptime); max=0; prev=$t0
while [ ! -e /tmp/stop ]; do
  echo 1 > /proc/sys/vm/drop_caches
  dd if=/dev/vdb of=/dev/null bs=4096 count=1 skip=$((RANDOM % 1000)) 2>/dev/null
  now=$(cut -d' ' -f1 /proc/uptime)
  gap=$(echo "$now $prev" | awk '{printf "%d", ($1-$2)*1000}')
  [ $gap -gt $max ] && max=$gap
  prev=$now
done
echo MAXGAP $max
"""


def run_gap_loop(vm, during):
    vm.run("rm -f /tmp/stop /tmp/gap.log")
    rc, out = vm.run(f"cat > /tmp/gap.sh <<'EOF'\n{GAP_LOOP}\nEOF\n"
                     "(sh /tmp/gap.sh > /tmp/gap.log 2>&1 &)")
    assert rc == 0, out
    time.sleep(1.0)
    during()
    time.sleep(1.0)
    vm.run("touch /tmp/stop")
    t.poll_until(lambda: "MAXGAP" in vm.run("cat /tmp/gap.log")[1], 30, "gap loop end")
    return int(vm.run("cat /tmp/gap.log")[1].split("MAXGAP")[1].split()[0])


def guest_stall(vm, emud):
    t.poll_until(lambda: vm.run("test -b /dev/vdb")[0] == 0, 30, "/dev/vdb")
    base = run_gap_loop(vm, lambda: time.sleep(2.0))

    def kill():
        os.kill(status(emud, "disk1")["Pid"], signal.SIGKILL)
        time.sleep(2.0)
    crash = run_gap_loop(vm, kill)
    return base, crash


def idle_cost(wd, bus, img, vms):
    def sample(emud, seconds=10):
        a = int(proc_status(emud.pid)["voluntary_ctxt_switches"])
        time.sleep(seconds)
        st = proc_status(emud.pid)
        return (int(st["voluntary_ctxt_switches"]) - a) / seconds, st["VmRSS"]

    with t.Emud(wd, bus) as emud:
        time.sleep(2)    # let start-up settle
        base = sample(emud)
        for i, vm in enumerate(vms):
            emud.emuctl("vm-add", f"v{i}", "--qmp", vm.qmp_path, check=True)
        for n in range(100):
            emud.emuctl("spawn", f"v{n % len(vms)}", "vhost-user-blk", f"e{n}",
                        f"image={img}", "readonly=on", check=True)
        assert len(json.loads(emud.emuctl("--json", "list", check=True).stdout)) == 100
        loaded = sample(emud)
        emud.kill()      # the emulators are reaped by the Workdir cleanup
    return base, loaded


def main():
    reason = t.qemu_usable(binaries=(t.QEMU, t.QSD), guest=False) or t.emud_usable()
    if reason:
        raise SystemExit(f"cannot run: {reason}")
    t.ensure_guest()
    t.become_subreaper()
    with t.Workdir(prefix="emud-bench-") as wd, t.Bus(wd) as bus:
        img = wd / "disk.img"
        t.image(img, 64 * 1024 * 1024)
        bare = bare_qsd_greeting_ms(wd, img)
        with t.VM(wd, slots=2) as vm:
            vm.wait_ready()
            times, (gap_base, gap_crash), rapid_ok = restart_latency(wd, bus, vm, img)
        print("== crash to restarted (SIGKILL -> new qsd answering QMP), backoff 1 ms")
        print(f"   emud restart   p50 {statistics.median(times):7.1f} ms   "
              f"max {max(times):7.1f} ms   (n={len(times)})")
        print(f"   baseline: bare qemu-storage-daemon exec-to-greeting p50 {bare:7.1f} ms")
        print(f"   guest read of that disk after 10 restarts in a row: "
              f"{'ok' if rapid_ok else 'HUNG (QEMU did not recover)'}")
        print("== guest-visible I/O stall (longest gap between 4 KiB reads), default backoff")
        print(f"   with a restart {gap_crash:6d} ms   baseline without {gap_base:6d} ms")

        vms = []
        try:
            for i in range(4):
                d = wd / f"vm{i}"
                d.mkdir()
                vms.append(t.VM(d, slots=25, memory="256M").__enter__())
            (base_cs, base_rss), (cs, rss) = idle_cost(wd, bus, img, vms)
        finally:
            for vm in vms:
                vm.stop()
        print("== emud idle cost")
        print(f"   100 emulators: {cs:6.2f} wake-ups/s, RSS {rss}")
        print(f"   baseline, none: {base_cs:6.2f} wake-ups/s, RSS {base_rss}")


if __name__ == "__main__":
    main()
