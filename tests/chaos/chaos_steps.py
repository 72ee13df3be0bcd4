# SPDX-License-Identifier: GPL-2.0-or-later
"""Chaos steps: drawn from a seed, run against a World, each with its expected outcomes.

generate() turns (seed, n) into a list of steps with random.Random(seed) alone, one step at a
time, so that the first M steps of a longer run are exactly the steps of `--steps M`: a failure
at step M replays with the same seed and --steps M. A step never looks at the world when it is
drawn; where it must choose among what exists (which emulator to kill), it carries a number,
`pick`, and takes candidate pick % len(candidates) from the sorted candidates when it runs.

run_step() observes what it needs first (emuctl list and vm-list, QEMU's free slots), acts, and
raises Violation when an answer is not one the documented behaviour allows (emud(8),
emuctl(1)). Every emuctl call is bounded (chaos_world.BOUND); no answer is a violation.
"""

import os
import random
import signal
import threading

from chaos_world import Violation, qsd_processes

HOSTILE = ("../x", "a/b", "", "a b", "a.b", "x" * 65, "dïsk", "id\nx")
UNKNOWN_VM = "vm-nope"
COLD_VM = "vm-cold"      # a VM whose QEMU never starts: emulators prepared for it (cold-plug)

# Weights of each step while emud runs, and while it is down (where the steps that need
# emud check that they fail at once, with NotRunning).
WEIGHTS_UP = (("spawn", 28), ("kill", 12), ("sigkill-emu", 9), ("emud-down", 7),
              ("qemu-restart", 5), ("vm-cycle", 5), ("bad-spawn", 7), ("concurrent", 9),
              ("cold", 7))
WEIGHTS_DOWN = (("emud-up", 40), ("sigkill-emu", 25), ("qemu-restart", 20), ("spawn", 8),
                ("kill", 7), ("cold", 5))
MAX_DOWN = 3             # emud comes back after at most this many steps


def _weighted(rng, table):
    names, weights = zip(*table)
    return rng.choices(names, weights)[0]


def _draw(rng, op, vms, ids):
    if op == "spawn":
        return ("spawn", rng.choice(vms), rng.choice(ids))
    if op in ("kill", "sigkill-emu"):
        return (op, rng.randrange(1000))
    if op == "emud-down":
        return ("emud-down", rng.choice(("KILL", "KILL", "TERM")))
    if op == "emud-up":
        return ("emud-up",)
    if op == "cold":
        return ("cold", rng.choice(("prepare", "prepare", "remove")), rng.choice(ids))
    if op in ("qemu-restart", "vm-cycle"):
        return (op, rng.choice(vms))
    if op == "bad-spawn":
        how = rng.choice(("hostile", "hostile", "dup", "unknown-vm"))
        return ("bad-spawn", how, rng.randrange(1000), rng.choice(vms))
    if op == "concurrent":
        sub = []
        if rng.random() < 0.3:               # a race on one id
            i = rng.choice(ids)
            sub += [("spawn", rng.choice(vms), i), ("spawn", rng.choice(vms), i)]
        n = rng.randint(2, 4)
        while len(sub) < n:
            kind = _weighted(rng, (("spawn", 40), ("kill", 25), ("list", 10), ("status", 10),
                                   ("vm-list", 5), ("hostile", 10)))
            if kind == "spawn":
                sub.append(("spawn", rng.choice(vms), rng.choice(ids)))
            elif kind == "kill":
                sub.append(("kill", rng.randrange(1000)))
            elif kind == "status":
                sub.append(("status", rng.choice(ids)))
            elif kind == "hostile":
                sub.append(("hostile", rng.randrange(1000)))
            else:
                sub.append((kind,))
        return ("concurrent", tuple(sub))
    raise ValueError(op)


def generate(seed, n, vms, ids):
    """The first n steps of seed's run."""
    rng = random.Random(seed)
    steps = []
    up, down_for, lost = True, 0, set()
    while len(steps) < n:
        if up and lost and rng.random() < 0.5:
            step = ("vm-cycle", sorted(lost)[rng.randrange(len(lost))])
        elif up:
            step = _draw(rng, _weighted(rng, WEIGHTS_UP), vms, ids)
        elif down_for >= MAX_DOWN:
            step = ("emud-up",)
        else:
            step = _draw(rng, _weighted(rng, WEIGHTS_DOWN), vms, ids)
        steps.append(step)
        op = step[0]
        if op == "emud-down":
            up, down_for = False, 0
        elif op == "emud-up":
            up = True
            lost.clear()
        elif op == "qemu-restart" and up:
            lost.add(step[1])
        elif op == "vm-cycle":
            lost.discard(step[1])
        if not up and op != "emud-down":
            down_for += 1
    return steps


def fmt(step):
    op = step[0]
    if op == "concurrent":
        return "concurrent [" + "; ".join(fmt(s) for s in step[1]) + "]"
    if op in ("kill", "sigkill-emu", "hostile"):
        return f"{op} #{step[1]}"
    if op == "bad-spawn":
        return f"bad-spawn {step[1]} #{step[2]} {step[3]}"
    return " ".join(map(str, step))


# ---------------------------------------------------------------------------------------------
# Running


def expect(a, allowed, what):
    """a (an Answer) must be one of allowed; an error must come with a message."""
    if a.name == "hang":
        raise Violation("hang", f"{what}: no answer within {a.secs:.0f} s")
    if a.name not in allowed:
        raise Violation("outcome", f"{what}: got {a}, expected one of {sorted(allowed)}")
    if a.name not in ("ok", "NotRunning") and not a.message:
        raise Violation("unclear-error", f"{what}: {a.name} without a message")


class Pre:
    """What the world looked like just before a step (emud up)."""

    def __init__(self, world):
        self.emus = world.listing()
        self.vms = world.vm_states()
        self.free = {n: world.free_slots(n) for n in world.vm_names}
        self.ready = {n: world.guest_ready(n) for n in world.vm_names}
        self.vhost_trouble = {n: world.vhost_trouble(n) for n in world.vm_names}

    def spawn_rule(self, vm, id_):
        """The one answer a lone Spawn(vm, id_) must get, by emud(8)'s order of checks."""
        if id_ in self.emus:
            return "Exists"
        if vm not in self.vms:
            return "UnknownVM"
        if self.vms[vm] != "connected":
            return "VMLost"
        if self.free[vm] == 0:
            return "NoFreeSlot"
        return "ok"

    def kill_target(self, world, pick):
        """(id, allowed answers) for kill #pick: one in six, or when nothing can be killed,
        an id that is not in use. Failed emulators are not killed (see CONFIG's comment)."""
        alive = sorted(i for i, e in self.emus.items() if e["state"] != "failed")
        unused = sorted(set(world.ids) - set(self.emus))
        if alive and (pick % 6 or not unused):
            id_ = alive[pick % len(alive)]
            return id_, self.kill_target_rule(id_)
        if unused:
            return unused[pick % len(unused)], {"UnknownEmulator"}
        return None, set()

    def kill_target_rule(self, id_):
        """A booted guest releases a device in about 50 ms (DESIGN.md), well within
        unplug-timeout-ms, so Timeout is allowed only while the VM's guest has not booted,
        or for an emulator that was restarted under a QEMU that logged a failed vhost-user
        reconnection (see World.vhost_trouble)."""
        if id_ not in self.emus:
            return {"UnknownEmulator"}
        e = self.emus[id_]
        vm = e["vm"]    # COLD_VM has no QEMU: a prepared emulator has no device to release
        if not self.ready.get(vm, True) or (e["restarts"] and self.vhost_trouble.get(vm)):
            return {"ok", "Timeout"}
        return {"ok"}


def _spawn(world, vm, id_):
    img = world.images.get(id_) or next(iter(world.images.values()))
    return world.ctl("spawn", vm, "vhost-user-blk", id_, f"image={img}")


def step_spawn(world, vm, id_):
    if not world.up:
        expect(_spawn(world, vm, id_), {"NotRunning"}, f"spawn {id_} with emud down")
        return "NotRunning"
    pre = Pre(world)
    want = pre.spawn_rule(vm, id_)
    a = _spawn(world, vm, id_)
    allowed = {want}
    if want == "NoFreeSlot" and a.name == "ok":
        # A guest may release a device whose earlier kill timed out; emud then stops that
        # emulator on its own (emud(8), Kill) and the slot is free again.
        if any(i not in world.listing() for i, e in pre.emus.items() if e["vm"] == vm):
            allowed.add("ok")
    expect(a, allowed, f"spawn {vm} {id_}")
    if a.name == "ok":
        e = world.listing().get(id_)
        if not e or e["vm"] != vm or e["state"] != "plugged":
            raise Violation("outcome", f"spawn {id_} answered ok but emuctl lists {e}")
    return str(a)


def step_cold(world, action, id_):
    """Prepare an emulator for COLD_VM, whose QEMU never comes, or remove that VM, which
    stops its prepared emulators (emuctl(1), prepare and vm-remove)."""
    img = world.images.get(id_) or next(iter(world.images.values()))
    if action == "prepare":
        args = ("prepare", COLD_VM, "vhost-user-blk", id_, f"image={img}")
    else:
        args = ("vm-remove", COLD_VM)
    if not world.up:
        expect(world.ctl(*args), {"NotRunning"}, f"{action} with emud down")
        return "NotRunning"
    emus = world.listing()
    if action == "prepare":
        want = "Exists" if id_ in emus else "ok"
    else:
        want = "ok" if COLD_VM in world.registered else "UnknownVM"
    a = world.ctl(*args)
    expect(a, {want}, " ".join(map(str, args)))
    if a.name == "ok" and action == "prepare":
        world.registered.add(COLD_VM)
        world.defined.add(COLD_VM)
        e = world.listing().get(id_)
        if not e or e["state"] != "prepared":
            raise Violation("outcome", f"prepare {id_} answered ok but emuctl lists {e}")
    elif a.name == "ok":
        world.registered.discard(COLD_VM)
        world.defined.discard(COLD_VM)
        left = [i for i, e in world.listing().items() if e["vm"] == COLD_VM]
        if left:
            raise Violation("outcome", f"vm-remove {COLD_VM} answered ok, {left} remain")
    return str(a)


def step_kill(world, pick):
    if not world.up:
        expect(world.ctl("kill", world.ids[pick % len(world.ids)]), {"NotRunning"},
               "kill with emud down")
        return "NotRunning"
    pre = Pre(world)
    id_, allowed = pre.kill_target(world, pick)
    if id_ is None:
        return "nothing to kill"
    a = world.ctl("kill", id_)
    expect(a, allowed, f"kill {id_}")
    now = world.listing()
    if a.name == "ok" and id_ in now:
        raise Violation("outcome", f"kill {id_} answered ok but it is still listed: {now[id_]}")
    if a.name == "Timeout" and id_ not in now:
        # Not wrong in itself: the guest may have released the device just after the
        # timeout, and emud then finishes the kill on its own.
        return f"{id_}: {a} (released since)"
    return f"{id_}: {a}"


def step_sigkill_emu(world, pick):
    """SIGKILL one of the run's qemu-storage-daemons, emud up or down."""
    procs = qsd_processes(world.wd)
    if not procs:
        return "no emulator process"
    pid = sorted(procs)[pick % len(procs)]
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return f"{procs[pid]} pid {pid} already gone"
    return f"{procs[pid]} pid {pid} killed"


def step_vm_cycle(world, vm):
    path = world.vms[vm].qmp_path
    if not world.up:
        expect(world.ctl("vm-remove", vm), {"NotRunning"}, "vm-remove with emud down")
        expect(world.ctl("vm-add", vm, "--qmp", path), {"NotRunning"}, "vm-add, emud down")
        return "NotRunning"
    pre = Pre(world)
    if vm not in pre.vms:
        want = "UnknownVM"
    elif any(e["vm"] == vm for e in pre.emus.values()):
        want = "Busy"
    else:
        want = "ok"
    a = world.ctl("vm-remove", vm)
    expect(a, {want}, f"vm-remove {vm}")
    if a.name == "ok":
        world.registered.discard(vm)
        world.expect_lost.discard(vm)
    b = world.ctl("vm-add", vm, "--qmp", path)
    expect(b, {"Exists" if vm in world.registered else "ok"}, f"vm-add {vm}")
    if b.name == "ok":
        world.registered.add(vm)
    return f"vm-remove {a.name}, vm-add {b.name}"


def step_bad_spawn(world, how, pick, vm):
    if not world.up:
        expect(_spawn(world, vm, HOSTILE[pick % len(HOSTILE)]), {"NotRunning"},
               "bad spawn with emud down")
        return "NotRunning"
    pre = Pre(world)
    if how == "dup" and pre.emus:
        id_ = sorted(pre.emus)[pick % len(pre.emus)]
        want = "Exists"
    elif how == "unknown-vm":
        id_ = world.ids[pick % len(world.ids)]
        vm = UNKNOWN_VM
        want = "Exists" if id_ in pre.emus else "UnknownVM"
    else:
        id_ = HOSTILE[pick % len(HOSTILE)]
        want = "InvalidId"
    a = _spawn(world, vm, id_)
    expect(a, {want}, f"spawn {vm} {id_!r}")
    return f"{id_!r}: {a}"


def step_concurrent(world, sub):
    """Run the sub-steps' emuctl calls at once, from threads; each answer must be one that
    some order of the calls could give."""
    pre = Pre(world) if world.up else None
    calls = []                                 # (kind, id or None, vm or None, argv)
    for s in sub:
        if s[0] == "spawn":
            img = world.images[s[2]]
            calls.append(("spawn", s[2], s[1], ("spawn", s[1], "vhost-user-blk", s[2],
                                                f"image={img}")))
        elif s[0] == "kill":
            id_ = pre.kill_target(world, s[1])[0] if pre else None
            id_ = id_ or world.ids[s[1] % len(world.ids)]
            calls.append(("kill", id_, None, ("kill", id_)))
        elif s[0] == "status":
            calls.append(("status", s[1], None, ("status", s[1])))
        elif s[0] == "hostile":
            id_ = HOSTILE[s[1] % len(HOSTILE)]
            calls.append(("hostile", id_, None, ("spawn", world.vm_names[0], "vhost-user-blk",
                                                 id_, f"image={world.images[world.ids[0]]}")))
        else:
            calls.append((s[0], None, None, (s[0],)))
    answers = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(k):
        barrier.wait()
        answers[k] = world.ctl(*calls[k][3])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(calls))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for (kind, id_, vm, argv), a in zip(calls, answers):
        what = f"concurrent {' '.join(map(str, argv[:4]))}"
        if pre is None:
            expect(a, {"NotRunning"}, what + " with emud down")
            continue
        expect(a, _allowed(pre, calls, kind, id_, vm), what)
    spawned = {}
    for (kind, id_, vm, _argv), a in zip(calls, answers):
        if kind == "spawn" and a.name == "ok":
            spawned[id_] = spawned.get(id_, 0) + 1
    dup = [i for i, n in spawned.items() if n > 1]
    if dup:
        raise Violation("outcome", f"concurrent spawns of {dup} all answered ok")
    return ", ".join(f"{c[0]} {c[1] or ''}".strip() + f": {a.name}"
                     for c, a in zip(calls, answers))


def _allowed(pre, calls, kind, id_, vm):
    """Answers a call may get when the others in calls run at the same time."""
    others = [c for c in calls if c[0] in ("spawn", "kill") and c[1] == id_]
    killed = sum(1 for c in others if c[0] == "kill")
    spawns = sum(1 for c in others if c[0] == "spawn")
    if kind in ("list", "vm-list"):
        return {"ok"}
    if kind == "hostile":
        return {"InvalidId"}
    if kind == "status":
        if killed or spawns:
            return {"ok", "UnknownEmulator"}
        return {"ok"} if id_ in pre.emus else {"UnknownEmulator"}
    if kind == "kill":
        allowed = pre.kill_target_rule(id_)
        if killed > 1:                         # another kill of the same id
            allowed |= {"Busy", "UnknownEmulator"}
        if spawns:                             # the emulator may come or go meanwhile
            allowed |= {"ok", "Timeout", "UnknownEmulator", "Busy"}
        return allowed
    # spawn
    allowed = {pre.spawn_rule(vm, id_)}
    if spawns > 1:
        allowed.add("Exists")
    if killed:
        allowed |= {"ok", "SpawnFailed", "Exists"}
    rivals = sum(1 for c in calls if c[0] == "spawn" and c[2] == vm) - 1
    if "ok" in allowed and pre.free.get(vm, 0) <= rivals:
        allowed.add("NoFreeSlot")
    if "NoFreeSlot" in allowed and any(c[0] == "kill" and c[1] in pre.emus and
                                       pre.emus[c[1]]["vm"] == vm for c in calls):
        allowed.add("ok")                      # a kill in the same VM may free a slot first
    return allowed


def run_step(world, step):
    """Run one step; returns a one-line account, raises Violation."""
    op = step[0]
    if op == "spawn":
        return step_spawn(world, step[1], step[2])
    if op == "kill":
        return step_kill(world, step[1])
    if op == "sigkill-emu":
        return step_sigkill_emu(world, step[1])
    if op == "emud-down":
        world.emud_down(signal.SIGKILL if step[1] == "KILL" else signal.SIGTERM)
        return "down"
    if op == "emud-up":
        world.emud_up()
        return f"pid {world.emud.pid}"
    if op == "qemu-restart":
        world.qemu_restart(step[1])
        return f"new QEMU pid {world.vms[step[1]].pid}"
    if op == "vm-cycle":
        return step_vm_cycle(world, step[1])
    if op == "bad-spawn":
        return step_bad_spawn(world, *step[1:])
    if op == "concurrent":
        return step_concurrent(world, step[1])
    if op == "cold":
        return step_cold(world, step[1], step[2])
    raise ValueError(op)
