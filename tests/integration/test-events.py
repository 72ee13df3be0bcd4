#!/usr/bin/env python3
"""emuctl events: what emud does, one line per event, from its D-Bus signals.

`emuctl --json events vm1` and `emuctl events` (text) run while the test spawns a disk into a
real guest, SIGKILLs its qemu-storage-daemon (a crash and a restart) and kills it; an emulator
of another VM must not show up in the filtered stream. Then emud stops and starts again: the
stream says so and announces the emulator the new emud adopted."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402


def status(emud):
    return json.loads(emud.emuctl("--json", "status", "disk0", check=True).stdout)


class Stream:
    """emuctl ARGS events..., its lines collected by a thread."""

    def __init__(self, bus, *args):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "DBUS_SESSION_BUS_ADDRESS": bus.address}
        self.proc = subprocess.Popen([str(t.emuctl_bin()), "--user", *args], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line.rstrip("\n"))

    def wait_for(self, pred, what, timeout=30):
        def found():
            with self._lock:
                return next((ln for ln in self.lines if pred(ln)), None)
        return t.poll_until(found, timeout, what)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(5)
        self._thread.join(5)
        return self.proc.stderr.read()


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=1) as vm, t.Bus(wd) as bus:
        img = t.image(wd / "disk.img", 16 << 20)
        emud = t.Emud(wd, bus)
        js = Stream(bus, "--json", "events", "vm1")
        text = Stream(bus, "events")

        def event(pred, what):
            line = js.wait_for(lambda ln: pred(json.loads(ln)), what)
            return json.loads(line)

        with steps.step("the streams start before anything happens"):
            time.sleep(0.3)         # they subscribe asynchronously; nothing to wait on
            assert js.lines == [] and text.lines == [], (js.lines, text.lines)
            vm.wait_ready()
            emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)

        with steps.step("spawn: new, then each state up to plugged, one line each"):
            emud.emuctl("spawn", "vm1", "vhost-user-blk", "disk0", f"image={img}", check=True)
            event(lambda e: e["event"] == "new" and e["id"] == "disk0", "new disk0")
            ev = event(lambda e: e["event"] == "state" and e["to"] == "plugged", "plugged")
            assert ev["vm"] == "vm1" and ev["pid"] > 0 and ev["from"], ev
            text.wait_for(lambda ln: " vm1 disk0 state " in ln and ln.endswith(
                f"-> plugged (pid {ev['pid']})"), "the text line")

        with steps.step("SIGKILL of qsd: exited, restarting, restarted, plugged again"):
            # Not in the middle of the guest's first reads of the new disk (its partition
            # scan): a request lost there would keep the guest from ever releasing it.
            t.poll_until(lambda: vm.run("head -c 512 /dev/vda >/dev/null")[0] == 0, 30,
                         "the guest reading /dev/vda")
            pid = ev["pid"]
            os.kill(pid, signal.SIGKILL)
            ex = event(lambda e: e["event"] == "exited", "exited")
            assert "SIGKILL" in ex["detail"], ex
            event(lambda e: e["event"] == "restarted" and e["detail"] == "restart 1",
                  "restarted")
            event(lambda e: e["event"] == "state" and e["to"] == "plugged" and
                  e["pid"] != pid, "plugged with a new pid")

        with steps.step("another VM's emulator is not in the filtered stream"):
            emud.emuctl("prepare", "vm2", "vhost-user-blk", "other", f"image={img}",
                        "readonly=on", check=True)
            text.wait_for(lambda ln: " vm2 other new" in ln, "vm2 in the unfiltered stream")
            emud.emuctl("kill", "other", check=True)
            text.wait_for(lambda ln: " vm2 other removed" in ln, "vm2's emulator removed")

        with steps.step("emud stops and starts: the stream says so, and the adoption"):
            st_pid = status(emud)["Pid"]
            emud.stop()
            event(lambda e: e["event"] == "emud" and e["detail"] == "stopped", "emud stopped")
            emud = t.Emud(wd, bus)
            event(lambda e: e["event"] == "emud" and e["detail"] == "started", "emud started")
            ad = event(lambda e: e["event"] == "adopted" and e["id"] == "disk0", "adopted")
            assert ad["to"] in ("adopting", "plugged") and ad["pid"] == st_pid, ad
            if ad["to"] == "adopting":
                event(lambda e: e["event"] == "state" and e["from"] == "adopting" and
                      e["to"] == "plugged", "adopting -> plugged")
            assert status(emud)["State"] == "plugged"

        with steps.step("kill: unplugging, stopping, removed"):
            emud.emuctl("kill", "disk0", check=True)
            event(lambda e: e["event"] == "removed" and e["id"] == "disk0", "removed")
            states = [json.loads(ln).get("to") for ln in js.lines
                      if json.loads(ln)["event"] == "state"]
            assert "unplugging" in states and "stopping" in states, states
            assert not any(json.loads(ln)["vm"] == "vm2" for ln in js.lines), js.lines
            for ln in js.lines:
                e = json.loads(ln)
                assert {"time", "event", "vm", "id"} <= e.keys(), e
        errors = js.stop() + text.stop()
        assert errors == "", errors
        emud.stop()


t.main(test)
