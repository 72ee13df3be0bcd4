#!/usr/bin/env python3
"""Seccomp through emud: denials named everywhere, learn -> dump -> enforce, bad policies.

Test-only kinds (copies of vhost-user-blk.json with another policy) in a private emulators
and policy directory; real QEMU, real guest, real qemu-storage-daemon.
  - The shipped vhost-user-blk policy: asked (through the QMP proxy, on qsd's own monitor) to
    open a TCP chardev, qsd calls socket(AF_INET, ...); the supervisor stops it and emud
    reports e.g. `seccomp denied socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, 0) (nr 41); emulator
    stopped` (glibc's resolver asks netlink first) in its log, in `emuctl status`, on the D-Bus object and as
    __org.emud_EMULATOR_SECCOMP. A policy violation is not restarted: the emulator is failed.
  - A policy without accept4: the spawn fails with the denial as its error; nothing is left.
  - learn mode on a base-only policy: the guest's workload runs, `emuctl policy dump` prints a
    policy; loaded in enforce mode, the same workload runs without a denial.
  - A policy with an unknown syscall: the spawn fails naming file and line; nothing starts.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

WORKLOAD = ("dd if=/dev/zero of=/dev/vda bs=4096 count=8 conv=fsync 2>/dev/null && "
            "echo 3 > /proc/sys/vm/drop_caches && dd if=/dev/vda of=/dev/null bs=4096 "
            "count=64 2>/dev/null")


def status(emud, name):
    return json.loads(emud.emuctl("--json", "status", name, check=True).stdout)


def kind(kinds, name, policy):
    d = json.loads((t.REPO / "emulators" / "vhost-user-blk.json").read_text())
    d["kind"] = name
    d["sandbox"]["policy"] = policy
    (kinds / f"{name}.json").write_text(json.dumps(d))


def policy_without(policies, name, *calls):
    text = (t.REPO / "policy" / "policies" / "vhost-user-blk.policy").read_text()
    lines = [x for x in text.splitlines() if x.split(":")[0].strip() not in calls]
    (policies / f"{name}.policy").write_text("\n".join(lines) + "\n")


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=2) as vm, t.Bus(wd) as bus:
        kinds, policies = wd / "kinds", wd / "policies"
        kinds.mkdir()
        shutil.copy(t.REPO / "emulators" / "vhost-user-blk.json", kinds)
        shutil.copytree(t.REPO / "policy" / "policies", policies)
        policy_without(policies, "no-accept", "accept4", "accept")
        (policies / "base-only.policy").write_text("@default kill\n@include base\n")
        (policies / "broken.policy").write_text("@default kill\n@include base\n")
        for name, pol in (("noaccept-blk", "no-accept"),
                          ("learn-blk", "base-only"), ("broken-blk", "broken"),
                          ("learned-blk", "learned")):
            kind(kinds, name, pol)
        img = t.image(wd / "disk.img", 8 * 1024 * 1024)
        (policies / "learned.policy").write_text("@default kill\n@include base\n")
        vm.wait_ready()

        with steps.step("a kind whose policy is broken stops emud at start-up, naming the line"):
            (policies / "broken.policy").write_text("@default kill\n@include base\n"
                                                    "no_such_syscall\n")
            r = subprocess.run([str(t.emud_bin()), "--user", "--runtime-dir", wd / "run0",
                                "--emulators-dir", kinds, "--policy-dir", policies],
                               env={"DBUS_SESSION_BUS_ADDRESS": bus.address,
                                    "PATH": os.environ["PATH"]},
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 1, r
            assert "broken.policy:3" in r.stderr and "no_such_syscall" in r.stderr, r.stderr
            (policies / "broken.policy").write_text("@default kill\n@include base\n")

        with t.Emud(wd, bus, "--emulators-dir", kinds, "--policy-dir", policies) as emud:
            emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
            q = t.QMP(emud.emuctl("qmp-path", "vm1", check=True).stdout.strip())

            with steps.step("a denied syscall stops the emulator and is named everywhere"):
                emud.emuctl("spawn", "vm1", "vhost-user-blk", "d0", f"image={img}",
                            check=True)
                assert status(emud, "d0")["SeccompMode"] == "enforce"
                try:
                    q.cmd("__org.emud_emulator-execute", emulator="d0", execute="chardev-add",
                          arguments={"id": "tcp0", "backend": {"type": "socket", "data": {
                              "addr": {"type": "inet",
                                       "data": {"host": "127.0.0.1", "port": "9"}},
                              "server": False}}})
                except t.QMPError:
                    pass                  # the emulator died under the command
                t.poll_until(lambda: status(emud, "d0")["State"] == "failed", 30, "failed")
                st = status(emud, "d0")
                print(f"  {st['SeccompReport']}")
                # glibc's resolver opens a netlink socket before the TCP one: either is the
                # first non-unix socket qsd tries, and either must be stopped.
                assert st["SeccompReport"] in (
                    "seccomp denied socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) (nr 41); "
                    "emulator stopped",
                    "seccomp denied socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, 0) (nr 41); "
                    "emulator stopped"), st
                assert st["Reason"] == st["SeccompReport"], st
                assert st["Restarts"] == 0 and st["LastExit"] == "killed by signal SIGKILL", st
                r = emud.emuctl("status", "d0", check=True)
                assert st["SeccompReport"] in r.stdout, r.stdout
                assert st["SeccompReport"] in emud.log()
                ev = q.wait_event("__org.emud_EMULATOR_SECCOMP", timeout=10)
                assert ev["data"]["emulator"] == "d0" and ev["data"]["syscall"] == "socket"
                assert ev["data"]["verdict"] == "denied-killed" and ev["data"]["nr"] == 41, ev
                assert ev["data"]["args"][0] in (2, 16), ev      # AF_INET, AF_NETLINK

            with steps.step("a denial during the spawn is the spawn's error"):
                r = emud.emuctl("--json", "spawn", "vm1", "noaccept-blk", "d1", f"image={img}")
                err = json.loads(r.stderr)
                assert err["error"] == "org.emud.Error.SpawnFailed", err
                assert err["message"].startswith("seccomp denied accept4("), err
                assert "d1" not in {e["id"] for e in json.loads(
                    emud.emuctl("--json", "list", check=True).stdout)}

            with steps.step("a policy file broken after start: the spawn fails naming the line"):
                (policies / "broken.policy").write_text("@default kill\n@include base\n"
                                                        "no_such_syscall\n")
                r = emud.emuctl("--json", "spawn", "vm1", "broken-blk", "d2", f"image={img}")
                err = json.loads(r.stderr)
                assert err["error"] == "org.emud.Error.BadDescriptor", err
                assert "broken.policy:3" in err["message"], err
                assert "no_such_syscall" in err["message"], err
                (policies / "broken.policy").write_text("@default kill\n@include base\n")

        # A fresh emud and VM state for the learn round trip (d0's device stays plugged
        # without a backend, which the guest cannot flush).
        vm.stop()
        (wd / "vm2").mkdir()
        with t.VM(wd / "vm2", slots=1) as vm2, t.Emud(wd, bus, "--emulators-dir", kinds,
                                                    "--policy-dir", policies) as emud:
            vm2.wait_ready()
            emud.emuctl("vm-add", "vm2", "--qmp", vm2.qmp_path, check=True)

            with steps.step("learn mode: the workload runs, the policy is dumped"):
                emud.emuctl("spawn", "--seccomp=learn", "vm2", "learn-blk", "l0",
                            f"image={img}", check=True)
                assert status(emud, "l0")["SeccompMode"] == "learn"
                t.poll_until(lambda: vm2.run("test -b /dev/vda")[0] == 0, 60, "/dev/vda")
                rc, out = vm2.run(WORKLOAD, timeout=120)
                assert rc == 0, out
                learned = emud.emuctl("policy", "dump", "l0", check=True).stdout
                # Self-contained: base expanded, plus what qsd did beyond it (accepting the
                # monitor and vhost-user connections, for one).
                rules = {x.split(":")[0] for x in learned.splitlines()
                         if x and not x.startswith(("#", "@"))}
                assert learned.startswith("# learned by emud") and "@default kill" in learned
                assert {"accept4", "openat", "futex"} <= rules, rules
                (policies / "learned.policy").write_text(learned)
                r = emud.emuctl("--json", "policy", "dump", "nope")
                assert json.loads(r.stderr)["error"] == "org.emud.Error.UnknownEmulator"
                emud.emuctl("kill", "l0", check=True)

            with steps.step("the dumped policy, enforced, runs the same workload"):
                emud.emuctl("spawn", "vm2", "learned-blk", "e0", f"image={img}", check=True)
                t.poll_until(lambda: vm2.run("test -b /dev/vda")[0] == 0, 60, "/dev/vda")
                rc, out = vm2.run(WORKLOAD, timeout=120)
                assert rc == 0, out
                st = status(emud, "e0")
                assert st["State"] == "plugged" and st["SeccompReport"] == "", st
                emud.emuctl("kill", "e0", check=True)


t.main(test, needs=(t.QEMU, t.QSD))
