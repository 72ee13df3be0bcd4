#!/usr/bin/env python3
"""emud killed with SIGKILL, again and again: every live emulator is adopted, nothing doubles.

- 20 cycles of SIGKILL emud / start emud with two plugged emulators: each time both are adopted
  with the same pid and state plugged, exactly one qemu-storage-daemon per emulator exists, no
  zombie, no stray file. Every fifth cycle one emulator is also SIGKILLed while emud is down:
  the next emud sees it gone (a crash while away) and restarts it.
- A spawn cut short by SIGKILL (QEMU is stopped with SIGSTOP so that chardev-add hangs): the
  next emud either finishes it or rolls it back; either way one process or none, no leftovers.
- A recycled pid: the state file is edited to name an unrelated process with the emulator's
  recorded start time (a kernel cannot be made to reuse a given pid on demand, so the state file
  stands in for it). emud must neither adopt nor signal that process.
- A corrupt state file (a garbage line and a truncated last line): emud reports the lines and
  adopts what the rest describes.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

# tests/soak/adopt-soak.sh runs the same test with many more cycles.
CYCLES = int(os.environ.get("EMUD_ADOPT_CYCLES", "20"))


def listing(emud):
    return {e["id"]: e for e in json.loads(emud.emuctl("--json", "list", check=True).stdout)}




def settled(emud, ids):
    now = listing(emud)
    return set(now) == set(ids) and all(now[i]["state"] == "plugged" for i in ids)


def runtime_files(emud):
    return sorted(p.name for p in (emud.runtime_dir / "vm").rglob("*"))


def test(steps):
    t.become_subreaper()
    with t.Workdir() as wd, t.VM(wd, slots=3) as vm, t.Bus(wd) as bus:
        imgs = {}
        for name in ("disk0", "disk1", "disk2"):
            imgs[name] = wd / f"{name}.img"
            t.image(imgs[name], 4 * 1024 * 1024)
        vm.wait_ready()
        emud = t.Emud(wd, bus)
        emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
        for name in ("disk0", "disk1"):
            emud.emuctl("spawn", "vm1", "vhost-user-blk", name, f"image={imgs[name]}",
                        check=True)
        expected_files = runtime_files(emud)

        with steps.step(f"{CYCLES} cycles of SIGKILL emud + restart: all adopted"):
            for cycle in range(1, CYCLES + 1):
                before = listing(emud)
                emud.kill()
                crashed = None
                if cycle % 5 == 0:
                    crashed = "disk1"
                    os.kill(before[crashed]["pid"], signal.SIGKILL)
                    assert t.wait_gone(before[crashed]["pid"], 5)
                emud = t.Emud(wd, bus)
                t.poll_until(lambda: settled(emud, ["disk0", "disk1"]), 30,
                             f"cycle {cycle}: both plugged")
                now = listing(emud)
                for name in ("disk0", "disk1"):
                    if name == crashed:
                        assert now[name]["pid"] != before[name]["pid"], (cycle, now)
                    else:
                        assert now[name]["pid"] == before[name]["pid"], (cycle, before, now)
                pids = t.qsd_pids(wd)
                assert pids == sorted(e["pid"] for e in now.values()), (cycle, pids, now)
                assert runtime_files(emud) == expected_files, runtime_files(emud)
            print(f"  {CYCLES} cycles, {CYCLES // 5} crashes while emud was down")

        with steps.step("the adopted emulators still restart after a crash"):
            old = listing(emud)["disk0"]["pid"]
            os.kill(old, signal.SIGKILL)
            t.poll_until(lambda: listing(emud)["disk0"]["restarts"] >= 1 and
                         listing(emud)["disk0"]["state"] == "plugged", 30, "restart")
            assert t.wait_gone(old, 5)

        with steps.step("a spawn cut short by SIGKILL is finished or rolled back"):
            spawn = subprocess.Popen(
                [str(t.emuctl_bin()), "--user", "spawn", "vm1", "vhost-user-blk", "disk2",
                 f"image={imgs['disk2']}"],
                env={"DBUS_SESSION_BUS_ADDRESS": bus.address, "PATH": os.environ["PATH"]},
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            state_file = emud.runtime_dir / "state.jsonl"

            def launched():
                for line in state_file.read_text().splitlines():
                    e = json.loads(line)
                    if e.get("emulator") == "disk2" and e["pid"] > 0:
                        return e
                return None

            # Once its process runs, stop QEMU so that the plug steps hang, and kill emud.
            t.poll_until(launched, 30, "disk2's process recorded", interval=0.001)
            os.kill(vm.pid, signal.SIGSTOP)
            try:
                print(f"  emud killed with disk2 {launched()['state']}")
                emud.kill()
            finally:
                os.kill(vm.pid, signal.SIGCONT)
            spawn.wait(timeout=30)
            emud = t.Emud(wd, bus)
            t.poll_until(lambda: listing(emud).get("disk2", {}).get("state") in
                         (None, "plugged") and settled(emud, [i for i in listing(emud)]),
                         30, "disk2 settled")
            now = listing(emud)
            outcome = "finished" if "disk2" in now else "rolled back"
            print(f"  the interrupted spawn was {outcome}")
            assert t.qsd_pids(wd) == sorted(e["pid"] for e in now.values()), (t.qsd_pids(wd), now)
            labels = [c["label"] for c in vm.qmp.cmd("query-chardev")]
            names = {p["name"] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")}
            if "disk2" not in now:
                assert "emud-disk2-chr" not in labels and "emud-disk2" not in names
                assert not any(f.startswith("disk2.") for f in runtime_files(emud))
            else:
                assert "emud-disk2" in names
                emud.emuctl("kill", "disk2", check=True)

        with steps.step("a recycled pid is neither adopted nor signalled"):
            emud.kill()
            victim = listing_pid = None
            state_file = emud.runtime_dir / "state.jsonl"
            lines = state_file.read_text().splitlines()
            entry = next(json.loads(x) for x in lines if '"emulator":"disk1"' in x)
            listing_pid = entry["pid"]
            os.kill(listing_pid, signal.SIGKILL)
            assert t.wait_gone(listing_pid, 5)
            victim = subprocess.Popen(["sleep", "300"])
            entry["pid"] = victim.pid           # start-time stays the old emulator's
            state_file.write_text("\n".join(json.dumps(entry, separators=(",", ":"))
                                            if '"emulator":"disk1"' in x else x
                                            for x in lines) + "\n")
            emud = t.Emud(wd, bus)
            t.poll_until(lambda: settled(emud, ["disk0", "disk1"]), 30, "disk1 back")
            assert victim.poll() is None, "emud signalled an unrelated process"
            assert f"pid {victim.pid} is not this emulator any more" in emud.log()
            assert listing(emud)["disk1"]["pid"] not in (victim.pid, listing_pid)
            victim.kill()
            victim.wait()

        with steps.step("a corrupt state file: bad lines reported, the rest adopted"):
            before = listing(emud)
            emud.kill()
            state_file = emud.runtime_dir / "state.jsonl"
            text = state_file.read_text()
            state_file.write_text("this is not json\n" + text + '{"emulator":"disk9","vm":')
            emud = t.Emud(wd, bus)
            t.poll_until(lambda: settled(emud, ["disk0", "disk1"]), 30, "adopted")
            assert listing(emud)["disk0"]["pid"] == before["disk0"]["pid"]
            log = emud.log()
            assert "state.jsonl:1:" in log and "cannot recover" in log, log
            nlines = len(text.splitlines()) + 2
            assert f"state.jsonl:{nlines}:" in log, log

        with steps.step("cleanup: shutdown --stop-emulators leaves nothing"):
            emud.emuctl("shutdown", "--stop-emulators", check=True)
            assert emud.stop() == 0
            assert t.qsd_pids(wd) == []
            assert list((emud.runtime_dir / "vm").rglob("*.sock")) == []


t.main(test, needs=(t.QEMU, t.QSD))
