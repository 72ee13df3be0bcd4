#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Seeded random orders of libvirt's and emud's events, against a real libvirtd.

    chaos-libvirt.py [--seeds A,B,C] [--steps M]

One libvirtd (with emud's hook) and one system dbus-daemon for the whole run
(tests/integration/emudtest_libvirt.py); per seed a new emud, as the system instance, and two
persistent domains, each declaring one vhost-user-blk emulator in its metadata. Then M steps
drawn from random.Random(seed), each of which libvirt or emud can meet in any order with the
others:

  start D        virsh start (must fail, with "emud is not running", while emud is down)
  destroy D      virsh destroy
  bounce D       virsh destroy and, at once, virsh start (emud is still stopping the emulators)
  crash D        SIGKILL of D's declared emulator (emud restarts it)
  spawn D        emuctl spawn of a hot-plugged disk through libvirt
  emud-kill      SIGKILL of emud (its emulators keep running)
  emud-start     a new emud, which adopts what runs and stops what lost its domain
  libvirtd       libvirtd restarted (emud reconnects)

After each step, once emud runs, these must hold within a bounded wait: every running domain
has its declared emulator plugged, with a live process, and the hot-plugged ones it was given;
a domain that is not running has no emulator, no VM and no runtime directory in emud; every
qemu-storage-daemon of the run is one that emud lists (none leaks, none is lost). Guests are
not waited for, so nothing here needs the guest to release a device.

A violation prints the seed, the step and the steps so far; `--seeds N --steps K` replays it
(steps are drawn without looking at the world, so a seed's first K steps are always the same).
A line `CHAOS-RESULT seed=N status=pass|fail steps=K/M` per seed is for scripts. Exit 0: all
passed; 1: a seed failed; 77: cannot run here."""

import argparse
import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import emudtest as t  # noqa: E402
import emudtest_libvirt as lvt  # noqa: E402

DOMAINS = ("emudt-c1", "emudt-c2")
HOOK = Path(os.environ.get("EMUD_HOOK_BIN") or
            Path(t.emud_bin()).resolve().parent.parent / "hooks" / "emud-libvirt-hook")
STEPS = (("start", 4), ("destroy", 3), ("bounce", 2), ("crash", 3), ("spawn", 2),
         ("emud-kill", 2), ("emud-start", 3), ("libvirtd", 1))


class Violation(Exception):
    pass


def generate(seed, n):
    rng = random.Random(seed)
    names, weights = zip(*STEPS)
    out = []
    for _ in range(n):
        op = rng.choices(names, weights)[0]
        out.append((op, rng.choice(DOMAINS)))
    return out


def declared(dom):
    return dom.replace("emudt-", "") + "d"


class World:
    def __init__(self, wd, lv):
        self.wd, self.lv = wd, lv
        self.runtime = wd / "run"
        self.emud = t.Emud(wd, None)
        self.hot = {d: set() for d in DOMAINS}
        self.n_hot = 0
        img = t.image(wd / "disk.img", 8 << 20, b"EMUD-CHAOS")
        for d in DOMAINS:
            xml, _ = lvt.declared_domain(wd, d, declared(d), {"image": img, "readonly": "on"},
                                         memory_mib=128)
            lv.virsh("define", xml)
        self.img = img

    def up(self):
        return self.emud is not None

    def running(self):
        return set(self.lv.virsh("list", "--name").stdout.split())

    def listed(self):
        r = self.emud.emuctl("--json", "list", timeout=30)
        if r.returncode != 0:
            raise Violation(f"emuctl list failed: {r.stderr}")
        return {e["id"]: e for e in json.loads(r.stdout)}

    # ---- steps -----------------------------------------------------------------------------

    def step(self, op, dom):
        """Do it, if the world allows; returns whether anything was done."""
        lv, running = self.lv, self.running()
        if op == "start" and dom not in running:
            r = lv.virsh("start", dom, check=False)
            if self.up() and r.returncode != 0:
                raise Violation(f"virsh start {dom} failed with emud up: {r.stderr}")
            if not self.up() and (r.returncode == 0 or "emud is not running" not in r.stderr):
                raise Violation(f"virsh start {dom} with emud down: {r.returncode} {r.stderr}")
            self.hot[dom].clear()
        elif op == "destroy" and dom in running:
            lv.virsh("destroy", dom)
            self.hot[dom].clear()
        elif op == "bounce" and dom in running:
            lv.virsh("destroy", dom)
            self.hot[dom].clear()
            r = lv.virsh("start", dom, check=False)
            if (r.returncode == 0) != self.up():
                raise Violation(f"virsh start {dom} right after destroy, emud "
                                f"{'up' if self.up() else 'down'}: {r.returncode} {r.stderr}")
        elif op == "crash" and dom in running and self.up():
            e = self.listed().get(declared(dom))
            if not e or not e["pid"]:
                return False
            os.kill(e["pid"], signal.SIGKILL)
        elif op == "spawn" and dom in running and self.up():
            self.n_hot += 1
            eid = f"h{self.n_hot}"
            self.emud.emuctl("spawn", dom, "vhost-user-blk", eid, f"image={self.img}",
                             "readonly=on", check=True)
            self.hot[dom].add(eid)
        elif op == "emud-kill" and self.up():
            self.emud.kill()
            self.emud = None
        elif op == "emud-start" and not self.up():
            self.emud = t.Emud(self.wd, None)
        elif op == "libvirtd":
            lv.restart_libvirtd()
        else:
            return False
        return True

    # ---- invariants ------------------------------------------------------------------------

    def violations(self):
        if not self.up():
            return []
        running, listed, bad = self.running(), self.listed(), []
        vms = self.emud.emuctl("vm-list", check=True).stdout
        for d in DOMAINS:
            mine = {i for i, e in listed.items() if e["vm"] == d}
            if d in running:
                want = {declared(d)} | self.hot[d]
                if mine != want:
                    bad.append(f"{d} runs with emulators {sorted(mine)}, wants {sorted(want)}")
                for i in mine & want:
                    e = listed[i]
                    if e["state"] != "plugged" or t.proc_state(e["pid"]) in (None, "Z"):
                        bad.append(f"{i} of {d} is {e['state']} (pid {e['pid']})")
            else:
                if mine:
                    bad.append(f"{d} is not running but has {sorted(mine)}")
                if d in vms.split() or (self.runtime / "vm" / d).exists():
                    bad.append(f"{d} is not running but emud still has its VM or directory")
        pids = {e["pid"] for e in listed.values()}
        for pid in t.qsd_pids(self.wd):
            if pid not in pids:
                bad.append(f"qemu-storage-daemon {pid} runs, but emud lists no such emulator")
        return bad

    def settle(self, timeout=40):
        deadline = time.monotonic() + timeout
        while True:
            bad = self.violations()
            if not bad:
                return
            if time.monotonic() > deadline:
                raise Violation("; ".join(bad))
            time.sleep(0.2)

    def close(self):
        for d in DOMAINS:
            self.lv.virsh("destroy", d, check=False)
        if not self.up():
            self.emud = t.Emud(self.wd, None)
        try:
            self.settle(30)
        finally:
            for d in DOMAINS:
                self.lv.virsh("undefine", d, check=False)
            self.emud.stop()
        if t.qsd_pids(self.wd):
            raise Violation(f"emulators left after the run: {t.qsd_pids(self.wd)}")


def run_seed(seed, n, lv):
    steps = generate(seed, n)
    print(f"=== seed {seed}: {n} steps", flush=True)
    with t.Workdir(prefix="emud-cl-") as wd:
        os.chmod(wd.path, 0o711)
        done, world = 0, None
        try:
            world = World(wd, lv)
            for i, (op, dom) in enumerate(steps, 1):
                did = world.step(op, dom)
                world.settle()
                done = i
                print(f"  {i:3} {op} {dom}: {'ok' if did else 'nothing to do'}", flush=True)
            world.close()
        except Exception as e:
            kind = "violation" if isinstance(e, Violation) else type(e).__name__
            print(f"CHAOS FAIL seed={seed} step={done + 1} ({kind}): {e}", flush=True)
            print("steps: " + ", ".join(f"{o} {d}" for o, d in steps[:done + 1]), flush=True)
            print(f"replay: {sys.argv[0]} --seeds {seed} --steps {done + 1}", flush=True)
            traceback.print_exc()
            for d in DOMAINS:
                lv.virsh("destroy", d, check=False)
                lv.virsh("undefine", d, check=False)
            if world and world.emud:
                world.emud.stop()
            print(f"CHAOS-RESULT seed={seed} status=fail steps={done}/{n}", flush=True)
            raise
    print(f"CHAOS-RESULT seed={seed} status=pass steps={n}/{n}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--steps", type=int, default=12)
    a = ap.parse_args()
    reason = t.qemu_usable(binaries=("qemu-system-x86_64", "virsh", "libvirtd"), guest=False)
    if reason or not HOOK.exists():
        t.skip(reason or f"the hook binary {HOOK} is not built")
    t.ensure_guest()
    failed = False
    with t.Workdir(prefix="emud-clv-") as top, lvt.SystemBus(top), lvt.Libvirt(top, HOOK) as lv:
        for seed in [int(s) for s in a.seeds.split(",")]:
            try:
                run_seed(seed, a.steps, lv)
            except Exception:
                failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
