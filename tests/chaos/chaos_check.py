# SPDX-License-Identifier: GPL-2.0-or-later
"""The invariants a chaos run checks after every step, once things have settled.

check() looks once and raises Violation for the first thing that does not hold; settle() calls
it until it passes or BOUND seconds have gone by, so transient states (restarting, adopting, a
state file not rewritten yet, an orphan not reaped yet) get their time, bounded, without any
fixed sleep. What must hold, with emud up:

  emud        alive; list and vm-list answer within BOUND;
  states      every emulator plugged or failed (others must settle), or prepared in the
              cold-plug VM (whose QEMU never starts, "defined"); every other VM connected, or
              lost exactly when its QEMU was replaced under this emud and not re-added since;
              the VMs listed are those the run registered; a lost VM has no emulators;
  QEMU        per VM: device emud-ID and chardev emud-ID-chr present iff ID is listed in that
              VM (plugged and failed emulators keep both);
  processes   one live qemu-storage-daemon per listed emulator with a pid, the one serving its
              image; none for ids not listed; a plugged emulator has a process; no zombie
              left to emud or to the test (which is the subreaper of orphaned emulators);
  files       RUNTIME holds only emud.lock, state.jsonl(.tmp) and vm/; vm/ one directory per
              registered VM, each with only qmp.sock and ID.vu.sock / ID.qmp.sock of its
              listed emulators;
  state file  lists the same VMs and emulators as emuctl;
  D-Bus       one object per listed emulator, at its sd_bus_path_encode path, and no other;
  cgroups     under emud's cgroup parent, one leaf per listed process, holding that process;
              no empty or foreign leaf.

With emud down (killed or stopped by the test) only the process-level checks apply: the
emulators keep running (nothing to compare them with) and there is no zombie. Up or down,
emud.log must hold no sanitizer report (AddressSanitizer, LeakSanitizer, UBSan's "runtime
error:"), for runs against a -Db_sanitize build.
"""

import os
import time

from chaos_world import BOUND, Violation, qsd_processes, run, zombies


def bus_path(id_):
    """sd_bus_path_encode("/org/emud/emulator", id_): every byte that is not [A-Za-z0-9]
    (or a leading digit) becomes _XX in lower-case hex."""
    if not id_:
        return "/org/emud/emulator/_"
    out = []
    for i, ch in enumerate(id_.encode()):
        c = chr(ch)
        if c.isascii() and (c.isalpha() or (i > 0 and c.isdigit())):
            out.append(c)
        else:
            out.append(f"_{ch:02x}")
    return "/org/emud/emulator/" + "".join(out)


def _bus_objects(world):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    rc, out, err = run(["busctl", f"--address={world.bus.address}", "tree", "--list",
                        "org.emud.Manager1"], env)
    if rc is None:
        raise Violation("hang", f"busctl tree: no answer within {BOUND} s")
    if rc != 0:
        raise Violation("dbus", f"busctl tree failed: {err.strip()}")
    return {p for p in out.split() if p.startswith("/org/emud/emulator/")}


def _check_zombies(world):
    parents = {os.getpid()}
    if world.up:
        parents.add(world.emud.pid)
    owned = {vm.pid for vm in world.vms.values()} | {world.bus.proc.pid}
    if world.emud is not None:
        owned.add(world.emud.pid)
    z = [x for x in zombies(parents) if x[0] not in owned]
    if z:
        raise Violation("zombie", f"zombies (pid, parent, comm): {z}")


SANITIZER = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def check_log(world):
    """emud.log must hold no sanitizer report (for a build with -Db_sanitize=...)."""
    try:
        with open(world.wd / "emud.log", "rb") as f:
            f.seek(world.log_checked)
            new = f.read()
    except FileNotFoundError:
        return
    # Only whole lines: a report may be half-written.
    new = new[:new.rfind(b"\n") + 1]
    text = new.decode(errors="replace")
    for marker in SANITIZER:
        at = text.find(marker)
        if at >= 0:
            start = text.rfind("\n", 0, at) + 1
            raise Violation("sanitizer", text[start:at + 3000])
    world.log_checked += len(new)


def check_down(world):
    check_log(world)
    _check_zombies(world)
    for name, vm in world.vms.items():
        if vm.proc.poll() is not None:
            raise Violation("qemu-died", f"QEMU of {name} exited with {vm.proc.returncode}")


def check(world):
    if not world.up:
        check_down(world)
        return
    bad = world.emud_alive()
    check_log(world)
    if bad:
        raise bad
    emus = world.listing()
    vms = world.vm_states()

    # States.
    if set(vms) != world.registered:
        raise Violation("vm-list", f"VMs listed {sorted(vms)}, registered "
                                   f"{sorted(world.registered)}")
    for name, state in vms.items():
        want = ("lost" if name in world.expect_lost
                else "defined" if name in world.defined else "connected")
        if state != want:
            raise Violation("vm-state", f"VM {name} is {state}, expected {want}")
    for i, e in emus.items():
        cold = vms.get(e["vm"]) == "defined"
        if e["state"] not in (("prepared",) if cold else ("plugged", "failed")):
            raise Violation("unsettled", f"{i} is {e['state']}")
        if e["vm"] not in vms or vms[e["vm"]] not in ("connected", "defined"):
            raise Violation("lost-vm", f"{i} listed in VM {e['vm']} which is "
                                       f"{vms.get(e['vm'], 'not registered')}")
        if e["state"] in ("plugged", "prepared") and not e["pid"]:
            raise Violation("no-process", f"{i} is plugged with pid 0")

    # QEMU agrees.
    for name in world.vm_names:
        want = {i for i, e in emus.items() if e["vm"] == name}
        devs, chrs = world.qemu_devices(name)
        if devs != want:
            raise Violation("qemu-devices", f"VM {name}: QEMU has devices "
                                            f"{sorted('emud-' + d for d in devs)}, emuctl "
                                            f"lists {sorted(want)}")
        if chrs != want:
            raise Violation("qemu-chardevs", f"VM {name}: QEMU has chardevs "
                                             f"{sorted(chrs)} (emud-ID-chr), emuctl lists "
                                             f"{sorted(want)}")

    # Processes.
    procs = qsd_processes(world.wd)
    listed = {e["pid"]: i for i, e in emus.items() if e["pid"]}
    for pid, i in listed.items():
        if procs.get(pid) != i:
            raise Violation("process", f"{i} lists pid {pid}, which is "
                                       f"{'not a live qsd' if pid not in procs else procs[pid]}")
    orphans = {pid: i for pid, i in procs.items() if pid not in listed}
    if orphans:
        raise Violation("orphan", f"qemu-storage-daemon not listed by emud (pid: id): "
                                  f"{orphans}")
    _check_zombies(world)

    # Files.
    run = world.runtime
    top = {p.name for p in run.iterdir()} - {"emud.lock", "state.jsonl", "state.jsonl.tmp",
                                             "vm"}
    if top:
        raise Violation("file", f"unexpected in {run}: {sorted(top)}")
    dirs = {p.name for p in (run / "vm").iterdir()}
    if dirs != set(vms):
        raise Violation("file", f"{run}/vm holds {sorted(dirs)}, VMs are {sorted(vms)}")
    for name in dirs:
        allowed = {"qmp.sock"}
        for i, e in emus.items():
            if e["vm"] == name:
                allowed |= {f"{i}.vu.sock", f"{i}.qmp.sock"}
        extra = {p.name for p in (run / "vm" / name).iterdir()} - allowed
        if extra:
            raise Violation("file", f"leftover in {run}/vm/{name}: {sorted(extra)}")

    # State file.
    svms, semus = world.state_file()
    if svms != set(vms) or semus != {i: e["vm"] for i, e in emus.items()}:
        raise Violation("state-file", f"state.jsonl has VMs {sorted(svms)} and emulators "
                                      f"{semus}; emuctl lists {sorted(vms)} and "
                                      f"{sorted(emus)}")

    # D-Bus objects.
    objs = _bus_objects(world)
    want = {bus_path(i) for i in emus}
    if objs != want:
        raise Violation("dbus-objects", f"objects {sorted(objs)}, expected {sorted(want)}")

    # cgroup leaves.
    if world.cgroup is not None:
        leaves = world.cgroup_leaves()
        held = {}
        for leaf, pids in leaves.items():
            if not pids:
                raise Violation("cgroup", f"empty leaf {world.cgroup}/{leaf} left behind "
                                          f"(leaves: {leaves})")
            for pid in pids:
                held[pid] = leaf
        if set(held) != set(listed) or len(leaves) != len(listed):
            raise Violation("cgroup", f"leaves {leaves}, listed processes {listed}")


def settle(world, timeout=BOUND):
    """check() until it passes; the last Violation after timeout seconds. Returns seconds."""
    t0 = time.monotonic()
    last = None
    while True:
        try:
            check(world)
            return time.monotonic() - t0
        except Violation as v:
            # A dead emud or a hang will not get better by waiting.
            if v.kind in ("emud-died", "hang", "qemu-died", "qemu-qmp", "sanitizer"):
                raise
            last = v
        if time.monotonic() - t0 >= timeout:
            raise Violation(last.kind, f"{last} (still after {timeout} s)") from None
        time.sleep(0.05)

