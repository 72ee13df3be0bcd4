#!/usr/bin/env python3
"""Bad input gets a clear, specific error and changes nothing.

Every request below must fail with its own org.emud.Error.* name (read from `emuctl --json`,
which prints the D-Bus error name) and leave emud exactly as it was: the same emulator and VM
lists, the same files in the runtime directory and the same child processes. emud must still be
running at the end and still able to spawn.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

IMG_SIZE = 4 * 1024 * 1024


def children(pid):
    """Pids whose parent is pid (emud's emulators are its children)."""
    out = set()
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                stat = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(d))
    return out


def snapshot(emud):
    # state.jsonl.tmp exists for an instant while emud rewrites its state file.
    files = sorted(str(p.relative_to(emud.runtime_dir)) for p in emud.runtime_dir.rglob("*")
                   if p.name != "state.jsonl.tmp")
    return {
        "emulators": json.loads(emud.emuctl("--json", "list", check=True).stdout),
        "vms": json.loads(emud.emuctl("--json", "vm-list", check=True).stdout),
        "files": files,
        "children": children(emud.pid),
    }


def expect_error(emud, name, *args):
    """Run emuctl --json ARGS; it must exit 1 with D-Bus error `name` and change nothing."""
    before = snapshot(emud)
    r = emud.emuctl("--json", *args)
    assert r.returncode == 1, f"emuctl {args}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    err = json.loads(r.stderr)
    assert err["error"] == f"org.emud.Error.{name}", f"emuctl {args}: {err}"
    assert err["message"], f"emuctl {args}: empty message"
    after = snapshot(emud)
    assert before == after, f"emuctl {args} changed state:\n{before}\n{after}"
    assert emud.proc.poll() is None, "emud exited"
    print(f"  {' '.join(map(str, args))[:70]:70} -> {name}: {err['message']}")
    return err["message"]


def test(steps):
    with t.Workdir() as wd, t.VM(wd, slots=1) as vm, t.Bus(wd) as bus:
        img = wd / "disk.img"
        t.image(img, IMG_SIZE)
        (wd / "adir").mkdir()

        # A kind whose device_add QEMU rejects, to check the roll-back after a hot-plug
        # failure; real QEMU and qsd, only the device property is wrong on purpose.
        kinds = wd / "kinds"
        kinds.mkdir()
        shutil.copy(t.REPO / "emulators" / "vhost-user-blk.json", kinds)
        broken = json.loads((kinds / "vhost-user-blk.json").read_text())
        broken["kind"] = "broken-blk"
        broken["device"]["properties"]["no-such-property"] = "1"
        (kinds / "broken-blk.json").write_text(json.dumps(broken))
        conf = wd / "emud.conf"
        conf.write_text("[emud]\nqmp-timeout-ms=2000\n")

        with steps.step("emuctl without emud: one clear line, exit 1"):
            r = t.emuctl(bus, "list")
            assert r.returncode == 1 and r.stderr.count("\n") == 1, r
            assert "emud is not running" in r.stderr, r.stderr

        emud = t.Emud(wd, bus, "--emulators-dir", kinds, "--config", conf)
        with emud:
            with steps.step("usage errors exit 2"):
                for args in ([], ["frobnicate"], ["spawn", "vm1"],
                             ["spawn", "vm1", "vhost-user-blk", "d", "noequals"],
                             ["vm-add", "vm1"], ["--bogus", "list"]):
                    r = emud.emuctl(*args)
                    assert r.returncode == 2, (args, r)

            with steps.step("vm-add errors"):
                vm.wait_ready()
                expect_error(emud, "InvalidId", "vm-add", "../x", "--qmp", vm.qmp_path)
                expect_error(emud, "InvalidId", "vm-add", "", "--qmp", vm.qmp_path)
                expect_error(emud, "BadPath", "vm-add", "vm1", "--qmp", "relative.sock")
                expect_error(emud, "QmpUnavailable", "vm-add", "vm1", "--qmp", wd / "nothing")
                # A socket that accepts but never greets, like a monitor that is busy.
                mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                mute.bind(str(wd / "mute.sock"))
                mute.listen(1)
                expect_error(emud, "QmpUnavailable", "vm-add", "vm1", "--qmp",
                             wd / "mute.sock")
                mute.close()
                emud.emuctl("vm-add", "vm1", "--qmp", vm.qmp_path, check=True)
                expect_error(emud, "Exists", "vm-add", "vm1", "--qmp", vm.qmp_path)

            with steps.step("spawn validation errors"):
                ok = ["vm1", "vhost-user-blk"]
                expect_error(emud, "UnknownKind", "spawn", "vm1", "nope", "d0", f"image={img}")
                expect_error(emud, "UnknownVM", "spawn", "vmX", "vhost-user-blk", "d0",
                             f"image={img}")
                for bad in ("../x", "", "a" * 200, "a b", "a.b", "d/0"):
                    expect_error(emud, "InvalidId", "spawn", *ok, bad, f"image={img}")
                expect_error(emud, "MissingOption", "spawn", *ok, "d0")
                expect_error(emud, "UnknownOption", "spawn", *ok, "d0", f"image={img}",
                             "colour=blue")
                expect_error(emud, "InvalidOption", "spawn", *ok, "d0", f"image={img}",
                             "format=vmdk")
                expect_error(emud, "InvalidOption", "spawn", *ok, "d0", f"image={img}",
                             "num-queues=0")
                expect_error(emud, "InvalidOption", "spawn", *ok, "d0", f"image={img}",
                             "readonly=maybe")
                expect_error(emud, "BadPath", "spawn", *ok, "d0", f"image={wd}/missing.img")
                expect_error(emud, "BadPath", "spawn", *ok, "d0", "image=disk.img")
                expect_error(emud, "BadPath", "spawn", *ok, "d0", f"image={wd}/adir")
                # Not writable even for root; a writable export needs a writable image.
                expect_error(emud, "BadPath", "spawn", *ok, "d0",
                             "image=/proc/sys/kernel/ostype")
                if os.geteuid() != 0:
                    os.chmod(img, 0)
                    expect_error(emud, "BadPath", "spawn", *ok, "d0", f"image={img}")
                    os.chmod(img, 0o644)

            with steps.step("an emulator that dies at start: its own message, nothing left"):
                msg = expect_error(emud, "SpawnFailed", "spawn", *ok, "d0", f"image={img}",
                                   "format=qcow2")
                assert "qcow2" in msg and "exited with status" in msg, msg

            with steps.step("device_add rejected by QEMU: rolled back"):
                msg = expect_error(emud, "HotplugFailed", "spawn", "vm1", "broken-blk", "d0",
                                   f"image={img}")
                assert "no-such-property" in msg, msg
                chardevs = [c["label"] for c in vm.qmp.cmd("query-chardev")]
                assert "emud-d0-chr" not in chardevs, chardevs

            with steps.step("duplicate id and no free slot"):
                emud.emuctl("spawn", *ok, "d0", f"image={img}", check=True)
                expect_error(emud, "Exists", "spawn", *ok, "d0", f"image={img}")
                img2 = wd / "disk2.img"
                shutil.copy(img, img2)
                msg = expect_error(emud, "NoFreeSlot", "spawn", *ok, "d1", f"image={img2}")
                assert "rp1" in msg, msg

            with steps.step("a second emud on the same runtime directory leaves it alone"):
                other = wd / "other"
                other.mkdir()
                with t.Bus(other) as bus2:
                    r = subprocess.run([str(t.emud_bin()), "--user", "--runtime-dir",
                                        emud.runtime_dir, "--emulators-dir", kinds,
                                        "--policy-dir", t.REPO / "policy" / "policies"],
                                       env={"DBUS_SESSION_BUS_ADDRESS": bus2.address,
                                            "PATH": os.environ["PATH"]},
                                       capture_output=True, text=True, timeout=30)
                assert r.returncode == 1 and "another emud" in r.stderr, r
                assert (emud.runtime_dir / "vm" / "vm1" / "d0.vu.sock").is_socket()
                r = t.emuctl(bus, "--json", "status", "d0", check=True)
                assert json.loads(r.stdout)["State"] == "plugged"

            with steps.step("kill, vm-remove and status errors"):
                expect_error(emud, "UnknownEmulator", "kill", "nope")
                expect_error(emud, "UnknownVM", "vm-remove", "nope")
                expect_error(emud, "Busy", "vm-remove", "vm1")
                r = emud.emuctl("status", "nope")
                assert r.returncode == 1 and "no emulator with id 'nope'" in r.stderr, r
                r = emud.emuctl("--json", "status", "../x")
                assert r.returncode == 1, r
                assert json.loads(r.stderr)["error"] == "org.emud.Error.InvalidId", r.stderr

            with steps.step("malformed D-Bus calls are rejected by signature"):
                r = subprocess.run(["busctl", "--user", "call", "org.emud.Manager1",
                                    "/org/emud/Manager1", "org.emud.Manager1", "Spawn", "s",
                                    "vm1"], capture_output=True, text=True,
                                   env={"DBUS_SESSION_BUS_ADDRESS": bus.address,
                                        "PATH": os.environ["PATH"]})
                assert r.returncode != 0, r
                assert emud.proc.poll() is None

            with steps.step("emud is still up and serving"):
                [e] = json.loads(emud.emuctl("--json", "list", check=True).stdout)
                assert e["id"] == "d0" and e["state"] == "plugged", e
                emud.emuctl("kill", "d0", check=True)
                assert emud.stop() == 0


t.main(test, needs=(t.QEMU, t.QSD))
