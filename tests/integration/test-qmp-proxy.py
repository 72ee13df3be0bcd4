#!/usr/bin/env python3
"""The QMP proxy as emud serves it: one socket per VM, reaching QEMU, emud and the emulators.

With a real guest and a real qemu-storage-daemon:
  - AddVM creates <runtime>/vm/<vm>/qmp.sock (mode 0600), `emuctl qmp-path` and `vm-add` print
    it, and its greeting is QEMU's own; QEMU's commands work through it and query-commands
    lists QEMU's commands plus emud's __org.emud_* ones;
  - __org.emud_spawn plugs an emulator, with __org.emud_EMULATOR_STATE events up to plugged;
  - __org.emud_emulator-execute runs query-block-exports on the emulator's own monitor, and
    an event of the emulator (BLOCK_WRITE_THRESHOLD, after the guest writes) arrives wrapped as
    __org.emud_EMULATOR_EVENT;
  - a crash shows as EMULATOR_STATE restarting (with the exit) and then plugged again;
  - __org.emud_kill unplugs it (DEVICE_DELETED through the proxy, then state gone);
  - bad requests get QMP errors in QEMU's classes; RemoveVM removes the socket.
"""

import json
import os
import signal
import stat
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402


def states(qmp, emulator):
    return [(e["data"]["state"], e["data"].get("pid")) for e in qmp.events
            if e["event"] == "__org.emud_EMULATOR_STATE" and e["data"]["emulator"] == emulator]


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=1) as vm, t.Bus(wd) as bus, t.Emud(wd, bus) as emud:
        img = wd / "disk.img"
        t.image(img, 8 * 1024 * 1024)
        vm.wait_ready()

        with steps.step("vm-add creates the proxy socket; qmp-path prints it"):
            r = emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
            path = emud.emuctl("qmp-path", "vm1", check=True).stdout.strip()
            assert path == str(emud.runtime_dir / "vm" / "vm1" / "qmp.sock"), path
            assert path in r.stdout, r.stdout
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
            assert stat.S_ISSOCK(os.stat(path).st_mode)

        with steps.step("QEMU's greeting and commands through the proxy"):
            q = t.QMP(path)
            assert q.greeting == vm.qmp.greeting, (q.greeting, vm.qmp.greeting)
            assert q.cmd("query-status")["status"] == "running"
            names = {c["name"] for c in q.cmd("query-commands")}
            for ext in ("__org.emud_query-emulators", "__org.emud_spawn", "__org.emud_kill",
                        "__org.emud_emulator-execute", "query-pci", "device_add"):
                assert ext in names, ext
            assert q.cmd("__org.emud_query-emulators") == []

        with steps.step("__org.emud_spawn plugs an emulator, with state events"):
            q.cmd("__org.emud_spawn", kind="vhost-user-blk", id="disk0",
                  options={"image": str(img)})
            [e] = q.cmd("__org.emud_query-emulators")
            assert e["id"] == "disk0" and e["state"] == "plugged" and e["pid"] > 0, e
            t.poll_until(lambda: ("plugged", e["pid"]) in states(q, "disk0"), 5, "event")
            seen = [s for s, _ in states(q, "disk0")]
            assert seen[0] == "starting" and seen[-1] == "plugged", seen
            assert any(ev["event"] == "__org.emud_EMULATOR_STATE" and "timestamp" in ev
                       for ev in q.events)

        with steps.step("emulator-execute reaches qsd's own monitor; its events come wrapped"):
            exports = q.cmd("__org.emud_emulator-execute", emulator="disk0",
                            execute="query-block-exports")
            assert [x["id"] for x in exports] == ["export0"], exports
            q.cmd("__org.emud_emulator-execute", emulator="disk0",
                  execute="block-set-write-threshold",
                  arguments={"node-name": "disk0", "write-threshold": 4096})
            t.poll_until(lambda: vm.run("test -b /dev/vda")[0] == 0, 30, "/dev/vda")
            rc, _ = vm.run("dd if=/dev/zero of=/dev/vda bs=4096 seek=4 count=1 conv=fsync")
            assert rc == 0
            ev = q.wait_event("__org.emud_EMULATOR_EVENT",
                              lambda ev: ev["data"]["event"] == "BLOCK_WRITE_THRESHOLD", 10)
            assert ev["data"]["emulator"] == "disk0" and "timestamp" in ev, ev
            try:
                q.cmd("__org.emud_emulator-execute", emulator="disk0", execute="no-such-cmd")
                raise AssertionError("no error")
            except t.QMPError as err:
                assert err.cls == "CommandNotFound", err

        with steps.step("a crash shows as restarting (with the exit), then plugged"):
            pid = q.cmd("__org.emud_query-emulators")[0]["pid"]
            q.events.clear()
            os.kill(pid, signal.SIGKILL)
            ev = q.wait_event("__org.emud_EMULATOR_STATE",
                              lambda ev: ev["data"]["state"] == "restarting", 10)
            assert ev["data"]["last-exit"] == "killed by signal SIGKILL", ev
            ev = q.wait_event("__org.emud_EMULATOR_STATE",
                              lambda ev: ev["data"]["state"] == "plugged", 10)
            assert ev["data"].get("pid") not in (None, pid), (ev, states(q, "disk0"))

        with steps.step("bad requests get QMP errors; the session goes on"):
            for cmd, args, cls in (
                    ("__org.emud_kill", {"id": "nope"}, "DeviceNotFound"),
                    ("__org.emud_kill", {}, "GenericError"),
                    ("__org.emud_spawn", {"kind": "nope", "id": "d9"}, "GenericError"),
                    ("__org.emud_spawn", {"kind": "vhost-user-blk", "id": "../x",
                                          "options": {"image": str(img)}}, "GenericError"),
                    ("__org.emud_emulator-execute", {"emulator": "disk0"}, "GenericError")):
                try:
                    q.execute(cmd, args)
                    raise AssertionError(f"{cmd} {args}: no error")
                except t.QMPError as err:
                    assert err.cls == cls, (cmd, args, err.cls, err.desc)
            assert q.cmd("query-status")["status"] == "running"

        with steps.step("__org.emud_kill unplugs it; DEVICE_DELETED comes through"):
            q.cmd("__org.emud_kill", id="disk0")
            q.wait_event("DEVICE_DELETED", lambda ev: ev["data"].get("device") ==
                         "emud-disk0", 10)
            q.wait_event("__org.emud_EMULATOR_STATE",
                         lambda ev: ev["data"]["state"] == "gone", 10)
            assert q.cmd("__org.emud_query-emulators") == []
            q.close()

        with steps.step("vm-remove removes the socket"):
            emud.emuctl("vm-remove", "vm1", check=True)
            assert not os.path.exists(path)
            r = emud.emuctl("--json", "qmp-path", "vm1")
            assert json.loads(r.stderr)["error"] == "org.emud.Error.UnknownVM", r


t.main(test, needs=(t.QEMU, t.QSD))
