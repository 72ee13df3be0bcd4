#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Seeded random faults against a real emud, real QEMUs and real qemu-storage-daemons.

    chaos.py [--seed N | --seeds A,B,C] [--steps M] [--ids ID,...] [--list]

Each seed gets a world of its own (chaos_world.py): a private dbus-daemon, emud with short
timeouts and a cgroup parent of its own, and two QEMUs (VMs vm-a and vm_b, three
pcie-root-ports each) registered with emud. Then M steps drawn from random.Random(seed)
(chaos_steps.py): spawn (ids from a pool with '-' and '_' in it), kill, SIGKILL an emulator,
SIGKILL or SIGTERM emud and start it again, replace a QEMU by a new one on the same QMP path,
vm-remove + vm-add, spawns that must fail (a duplicate id, a hostile id such as '../x', an
unknown VM), and several emuctl calls at once from threads. Steps that need emud run while it
is down too, and must fail at once. After each step the invariants of chaos_check.py must hold
once things settle (bounded polls, no fixed sleeps). The run ends with a settled check and
`emuctl shutdown --stop-emulators`, after which no emulator process and no cgroup leaf may be
left.

Kill and the guest: device_del completes only when the guest releases the device. The QEMUs
boot the test guest (emudtest.VM always does; a few seconds under TCG, both at once). The run
waits for the two first guests once, before step 1, so that kills have a guest that answers;
it never waits for the guest of a QEMU that replaced another. A kill into a VM whose guest has
booted must succeed; one into a VM whose guest has not booted yet may instead fail with Timeout
after unplug-timeout-ms, as emud(8) documents: the emulator stays plugged and its device, with
an unplug request pending, stays in QEMU. The invariants hold either way. unplug-timeout-ms is
8 s here: a booted guest starved by a second guest booting under TCG on two cores was seen to
take more than 2 s (seed 2008), and then release the device all the same.

Left out on purpose: the crash-loop give-up (restart-limit-burst is 1000 here), since killing a
given-up emulator sends device_del for a device without a backend, a known way to hang QEMU
7.2's monitor (BUGS in emud(8)); test-crash-loop covers the give-up. A kill into a VM whose QEMU
logged a failed vhost-user reconnection may also time out (see chaos_steps.Pre).

--ids replaces the id pool (for instance to look past a bug that every id with '-' hits).

On a violation the seed, the step number, the violated invariant and the step list are printed,
with the command that replays the run up to that step (steps are drawn without looking at the
world, so the first M steps of any run of a seed are the same), and the run's directory (emud's,
QEMU's and the guests' logs) is kept. A line `CHAOS-RESULT seed=N status=pass|fail steps=K/M
...` per seed is for scripts (tests/soak/chaos-soak.sh). Exit 0: every seed passed; 1: a seed
failed; 77: cannot run here (reason printed).
"""

import argparse
import os
import random
import shutil
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chaos_world import POOL, VMS, Violation, World, t  # noqa: E402
from chaos_steps import fmt, generate, run_step  # noqa: E402
from chaos_check import check_log, settle  # noqa: E402
from chaos_world import forget, qsd_processes  # noqa: E402


def replay_cmd(seed, steps, ids):
    extra = "" if tuple(ids) == POOL else f" --ids {','.join(ids)}"
    return f"tests/chaos/chaos.py --seed {seed} --steps {steps}{extra}"


def finish(world):
    """The end of a run: emud up and settled, then shutdown --stop-emulators leaves nothing."""
    if not world.up:
        world.emud_up()
    settle(world)
    a = world.ctl("shutdown", "--stop-emulators")
    if a.name != "ok":
        raise Violation("shutdown", f"shutdown --stop-emulators: {a}")
    emud, world.emud = world.emud, None
    rc = emud.stop(timeout=30)
    forget(emud.pid)
    check_log(world)
    if rc != 0:
        raise Violation("shutdown", f"emud exited with {rc} after shutdown")
    try:
        t.poll_until(lambda: not qsd_processes(world.wd), 10, "emulators to exit")
    except TimeoutError:
        raise Violation("orphan", f"emulators left after shutdown --stop-emulators: "
                                  f"{qsd_processes(world.wd)}") from None
    left = sorted(p.name for p in (world.runtime / "vm").rglob("*.sock")
                  if p.name != "qmp.sock")
    if left:
        raise Violation("file", f"sockets left after shutdown --stop-emulators: {left}")
    if world.cgroup is not None:
        try:
            t.poll_until(lambda: not world.cgroup_leaves(), 10, "cgroup leaves to go")
        except TimeoutError:
            raise Violation("cgroup", f"leaves left after shutdown --stop-emulators: "
                                      f"{world.cgroup_leaves()}") from None


def run_seed(seed, nsteps, ids):
    """Run one seed; returns (ok, steps done, violation kind or None)."""
    steps = generate(seed, nsteps, VMS, ids)
    print(f"=== seed {seed}: {nsteps} steps, ids {','.join(ids)}", flush=True)
    wd = t.Workdir(prefix="emud-c-")
    k = 0
    failure = None
    t0 = time.monotonic()
    try:
        with World(wd.path, ids=ids) as world:
            if world.cgroup is None:
                print(f"  note: no cgroup parent ({world.cgroup_note}); cgroup leaves not "
                      f"checked", flush=True)
            g0 = time.monotonic()
            world.wait_guests()
            print(f"  guests booted in {time.monotonic() - g0:.1f} s", flush=True)
            settle(world)
            for k, step in enumerate(steps, 1):
                s0 = time.monotonic()
                what = run_step(world, step)
                s1 = time.monotonic()
                settled = settle(world)
                print(f"  [{seed}] {k:3}/{nsteps} {fmt(step)}: {what} "
                      f"({s1 - s0:.2f} s; settled in {settled:.2f} s)", flush=True)
            k = nsteps + 1
            finish(world)
            print(f"  [{seed}] final shutdown --stop-emulators: clean", flush=True)
    except Violation as v:
        failure = v
    except Exception as e:
        traceback.print_exc()
        failure = Violation("driver", f"{type(e).__name__}: {e}")
    finally:
        wd.__exit__(Violation if failure else None, None, None)
    secs = time.monotonic() - t0
    if failure is None:
        print(f"CHAOS-RESULT seed={seed} status=pass steps={nsteps}/{nsteps} "
              f"secs={secs:.1f}", flush=True)
        return True, nsteps, None
    where = "final shutdown" if k > nsteps else ("setup" if k == 0 else f"step {k}")
    print(f"\nCHAOS FAIL: seed {seed}, {where}: {failure}\n", flush=True)
    print("steps:")
    for n, s in enumerate(steps, 1):
        mark = ">" if n == k else " "
        print(f" {mark}{n:3} {fmt(s)}")
        if n == k:
            break
    print(f"replay: {replay_cmd(seed, min(max(k, 1), nsteps), ids)}")
    print(f"logs:   {wd.path} (emud.log, vm-a/, vm_b/)\n", flush=True)
    print(f"CHAOS-RESULT seed={seed} status=fail steps={min(k, nsteps)}/{nsteps} "
          f"kind={failure.kind} at='{where}' secs={secs:.1f}", flush=True)
    return False, min(k, nsteps), failure.kind


def unusable():
    """Why this machine cannot run the driver, or None."""
    why = t.qemu_usable(binaries=(t.QEMU, t.QSD), guest=False) or t.emud_usable()
    if why:
        return why
    if not shutil.which("busctl"):
        return "busctl not found"
    if os.geteuid() != 0:
        return "emud's sandbox needs root (see NOTES in emud(8))"
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, help="one seed (default: a random one, printed)")
    ap.add_argument("--seeds", help="comma-separated seeds, each run in a world of its own")
    ap.add_argument("--steps", type=int, default=40, help="steps per seed (default 40)")
    ap.add_argument("--ids", help=f"emulator id pool (default {','.join(POOL)})")
    ap.add_argument("--list", action="store_true", help="print the steps and exit")
    args = ap.parse_args()
    if args.seeds:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    elif args.seed is not None:
        seeds = [args.seed]
    else:
        seeds = [random.SystemRandom().randrange(1_000_000)]
    ids = tuple(args.ids.split(",")) if args.ids else POOL
    if args.list:
        for seed in seeds:
            for n, s in enumerate(generate(seed, args.steps, VMS, ids), 1):
                print(f"{seed} {n:3} {fmt(s)}")
        return 0
    why = unusable()
    if why:
        print(f"SKIP: {why}", flush=True)
        return 77
    t.ensure_guest()
    t.become_subreaper()
    t0 = time.monotonic()
    results = [run_seed(seed, args.steps, ids) for seed in seeds]
    failed = [(s, r) for s, r in zip(seeds, results) if not r[0]]
    total = sum(r[1] for r in results)
    print(f"\nchaos: {len(seeds)} seeds, {total} steps, {len(failed)} failed "
          f"({time.monotonic() - t0:.1f} s)")
    for seed, (_ok, k, kind) in failed:
        print(f"  seed {seed}: {kind} at step {k}: {replay_cmd(seed, max(k, 1), ids)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
