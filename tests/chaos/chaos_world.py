# SPDX-License-Identifier: GPL-2.0-or-later
"""The world a chaos run acts on: a private bus, emud, two QEMUs, their emulators.

World owns every process of one seeded run and the model of what the run expects: which VMs
are registered, which are lost (their QEMU was replaced while emud ran, and nobody has re-added
them yet), and whether emud is meant to be up. It offers the primitives the steps are made of
(emuctl with a bound, stopping and starting emud and QEMU) and the observations the invariants
compare (emuctl's view, QEMU's view, processes, files, cgroup leaves).

Everything real: emud, qemu-system-x86_64, qemu-storage-daemon, dbus-daemon, from the
integration harness (tests/integration/emudtest.py).
"""

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import emudtest as t  # noqa: E402
import emudtest_procs  # noqa: E402

VMS = ("vm-a", "vm_b")
POOL = ("d0", "d1", "disk-1", "disk_2", "web-3", "x_4")
SLOTS = 3
BOUND = 30              # seconds: every emuctl call, every settling, every start
IMG_SIZE = 4 * 1024 * 1024

# Short timeouts keep a run quick; restart-limit-burst keeps emulators out of the crash-loop
# give-up, whose failed devices a later kill would device_del without a backend, which is a
# known way to hang QEMU 7.2's monitor (BUGS in emud(8)); test-crash-loop covers the give-up.
CONFIG = """[emud]
unplug-timeout-ms=8000
stop-grace-ms=1000
qmp-timeout-ms=5000
ready-timeout-ms=10000
restart-backoff-start-ms=100
restart-backoff-cap-ms=1000
restart-limit-burst=1000
"""


class Violation(Exception):
    """An invariant does not hold; kind is a short tag for summaries."""

    def __init__(self, kind, msg):
        super().__init__(f"{kind}: {msg}")
        self.kind = kind


class Answer:
    """What one emuctl call came back with: name is "ok", the short D-Bus error name
    ("Exists", "Timeout", ...; "NotRunning" when nobody owns org.emud.Manager1), "usage" for
    exit 2, or "hang" when no answer came within BOUND."""

    def __init__(self, args, rc, out, err, secs):
        self.args, self.rc, self.out, self.err, self.secs = args, rc, out, err, secs
        self.message = ""
        if rc is None:
            self.name = "hang"
        elif rc == 0:
            self.name = "ok"
        elif rc == 2:
            self.name = "usage"
        else:
            try:
                e = json.loads(err)
                full, self.message = e["error"], e.get("message", "")
            except (ValueError, KeyError, TypeError):
                full, self.message = "unparsed", err.strip()
            if full == "org.freedesktop.DBus.Error.ServiceUnknown":
                self.name = "NotRunning"
            else:
                self.name = full.removeprefix("org.emud.Error.")

    def json(self):
        return json.loads(self.out)

    def __str__(self):
        msg = f": {self.message}" if self.message else ""
        return f"{self.name}{msg} ({self.secs:.2f} s)"


def _cgroup_parent():
    """A fresh, empty cgroup v2 directory for emud's leaves, or (None, why not)."""
    mount = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.startswith("cgroup2 "):
                mount = pre.split()[4]
                break
    if not mount:
        return None, "no cgroup2 hierarchy"
    own = next((ln[3:].strip() for ln in Path("/proc/self/cgroup").read_text().splitlines()
                if ln.startswith("0::")), None)
    if own is None:
        return None, "no cgroup2 entry in /proc/self/cgroup"
    path = Path(mount + own.rstrip("/")) / f"emud-chaos-{os.getpid()}-{time.monotonic_ns()}"
    try:
        path.mkdir()
    except OSError as e:
        return None, f"cannot create {path}: {e.strerror}"
    return path, None


def _rmdir(path):
    try:
        path.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False            # EBUSY until the last process in it has been reaped


def _remove_cgroup(parent):
    for leaf in sorted(p for p in parent.iterdir() if p.is_dir()):
        with contextlib.suppress(OSError):
            (leaf / "cgroup.kill").write_text("1")
        with contextlib.suppress(TimeoutError):
            t.poll_until(lambda: _rmdir(leaf), 10, f"{leaf} to go")
    if not _rmdir(parent):
        print(f"note: cannot remove {parent}: {list(parent.iterdir())}", flush=True)


def forget(pid):
    """Tell the harness's orphan reaper (emudtest_procs) that pid, a child of ours that has
    been waited for, is no longer ours. The reaper leaves the pids of our own subprocesses to
    subprocess, and never forgets them; with a run's thousands of short-lived emuctl calls and
    pid_max at 32768, a pid comes round again, and an orphaned emulator that got it would stay
    a zombie."""
    emudtest_procs._owned_pids.discard(pid)


def run(argv, env):
    """subprocess.run(argv, capture_output, text, timeout=BOUND), forgetting the pid after.
    Returns (returncode or None on timeout, stdout, stderr)."""
    p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=BOUND)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        rc = None
    forget(p.pid)
    return rc, out, err


def qsd_processes(wd):
    """{pid: id} of the live (not zombie) qemu-storage-daemons serving this run's images."""
    out = {}
    mine = str(wd).encode()
    pat = re.compile(rb"/img/([^/,\0]+)\.img")
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-storage-daemon" not in cmd or mine not in cmd:
            continue
        if t.proc_state(int(d)) in (None, "Z"):
            continue
        m = pat.search(cmd)
        out[int(d)] = m[1].decode() if m else "?"
    return out


def zombies(parents):
    """[(pid, ppid, comm)] of zombies whose parent is in parents."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] == "Z" and int(fields[1]) in parents:
            out.append((int(d), int(fields[1]), comm))
    return out


class World:
    """One run's processes and expectations. Use as a context manager."""

    def __init__(self, wd, ids=POOL, vms=VMS):
        self.wd = wd
        self.ids = tuple(ids)
        self.vm_names = tuple(vms)
        self.bus = None
        self.emud = None
        self.vms = {}
        self.registered = set()      # VMs emud should list
        self.expect_lost = set()     # registered VMs whose QEMU went away under a running emud
        self.defined = set()         # registered VMs of cold-plug, whose QEMU never starts
        self.last_listing = {}
        self.log_checked = 0         # bytes of emud.log scanned for sanitizer reports
        self.qemu_generation = {n: 0 for n in vms}
        self.cgroup, self.cgroup_note = _cgroup_parent()
        (wd / "img").mkdir()
        self.images = {i: t.image(wd / "img" / f"{i}.img", IMG_SIZE) for i in self.ids}
        self.conf = wd / "emud.conf"
        self.conf.write_text(CONFIG + (f"cgroup-parent={self.cgroup}\n" if self.cgroup else ""))

    def __enter__(self):
        try:
            self.bus = t.Bus(self.wd)
            for n in self.vm_names:
                (self.wd / n).mkdir()
                self.vms[n] = t.VM(self.wd / n, slots=SLOTS)
            self.emud_up()
            for n in self.vm_names:
                a = self.ctl("vm-add", n, "--qmp", self.vms[n].qmp_path)
                if a.name != "ok":
                    raise Violation("setup", f"vm-add {n}: {a}")
                self.registered.add(n)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.emud is not None:
            self.emud.kill()
            forget(self.emud.pid)
            self.emud = None
        for vm in self.vms.values():
            vm.stop()
            forget(vm.pid)
        if self.bus is not None:
            self.bus.stop()
            forget(self.bus.proc.pid)
        # Emulators outlive emud by design: end those of this run (the Workdir does the same
        # on its way out, but the cgroup leaves can only go once their processes have).
        for pid in qsd_processes(self.wd):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in list(qsd_processes(self.wd)):
            t.wait_gone(pid, 5)
        if self.cgroup is not None:
            _remove_cgroup(self.cgroup)

    # -----------------------------------------------------------------------------------------
    # emud

    @property
    def up(self):
        return self.emud is not None

    def emud_alive(self):
        """None if emud runs (or is meant to be down), else a Violation to raise."""
        if self.emud is None or self.emud.proc.poll() is None:
            return None
        rc = self.emud.proc.returncode
        tail = "\n".join(self.emud.log().splitlines()[-25:])
        how = f"signal {-rc}" if rc < 0 else f"status {rc}"
        return Violation("emud-died", f"emud exited ({how}) while it should run; log tail:\n"
                                      f"{tail}")

    def emud_down(self, sig):
        """Stop emud with sig; a SIGTERM must end it with status 0 within BOUND."""
        emud, self.emud = self.emud, None
        died = None if emud.proc.poll() is None else emud.proc.returncode
        rc = emud.stop(sig, timeout=BOUND)
        forget(emud.pid)
        if died is not None:
            self.emud = emud               # keep it for emud_alive() to report
            raise self.emud_alive()
        if sig == signal.SIGTERM and rc != 0:
            raise Violation("emud-exit", f"SIGTERM: emud exited with {rc}, not 0")

    def emud_up(self):
        try:
            self.emud = t.Emud(self.wd, self.bus, "--config", self.conf, timeout=BOUND)
        except Exception as e:
            raise Violation("emud-start", f"emud did not start: {e}") from None
        # The next emud reconnects every registered VM, lost ones included.
        self.expect_lost.clear()

    # -----------------------------------------------------------------------------------------
    # emuctl

    def ctl(self, *args):
        """emuctl --json ARGS, bounded by BOUND; never raises for emud's answers."""
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "DBUS_SESSION_BUS_ADDRESS": self.bus.address}
        argv = [str(t.emuctl_bin()), "--user", "--json", *map(str, args)]
        t0 = time.monotonic()
        rc, out, err = run(argv, env)
        return Answer(args, rc, out, err, time.monotonic() - t0)

    def must(self, *args):
        """emuctl that must answer ok: the JSON it printed."""
        a = self.ctl(*args)
        if a.name == "hang":
            raise Violation("hang", f"emuctl {' '.join(map(str, args))}: no answer within "
                                    f"{BOUND} s")
        bad = self.emud_alive()
        if bad:
            raise bad
        if a.name != "ok":
            raise Violation("emuctl", f"emuctl {' '.join(map(str, args))}: {a}")
        return a.json()

    def listing(self):
        """{id: emulator} from emuctl --json list (also kept as last_listing)."""
        self.last_listing = {e["id"]: e for e in self.must("list")}
        return self.last_listing

    def vm_states(self):
        return {v["name"]: v["state"] for v in self.must("vm-list")}

    # -----------------------------------------------------------------------------------------
    # QEMU

    def qemu_restart(self, name):
        """Quit the VM's QEMU and start a new one with the same argv (same QMP path)."""
        vm = self.vms[name]
        vm.stop()
        forget(vm.pid)
        self.qemu_generation[name] += 1
        d = self.wd / name
        with contextlib.suppress(OSError):
            (d / "qemu.log").rename(d / f"qemu.log.{self.qemu_generation[name]}")
        self.vms[name] = t.VM(d, slots=SLOTS)
        if self.up and name in self.registered:
            self.expect_lost.add(name)

    def qemu_devices(self, name):
        """(ids with a device emud-ID, ids with a chardev emud-ID-chr) in the VM's QEMU."""
        vm = self.vms[name]
        if vm.proc.poll() is not None:
            raise Violation("qemu-died", f"QEMU of {name} exited with {vm.proc.returncode}:\n"
                                         f"{vm.qemu_log()[-2000:]}")
        try:
            devs = {p["name"][5:] for p in vm.qmp.cmd("qom-list", path="/machine/peripheral")
                    if p["name"].startswith("emud-")}
            chrs = {c["label"][5:-4] for c in vm.qmp.cmd("query-chardev")
                    if c["label"].startswith("emud-") and c["label"].endswith("-chr")}
        except (TimeoutError, OSError, t.QMPError) as e:
            raise Violation("qemu-qmp", f"QEMU of {name} does not answer the test's monitor: "
                                        f"{e}") from None
        return devs, chrs

    def guest_ready(self, name):
        """Whether the VM's guest has booted (and so handles PCIe hot-unplug)."""
        return t.READY_MARKER.decode().strip() in self.vms[name].serial_text()

    def vhost_trouble(self, name):
        """Whether the VM's QEMU logged a failed vhost-user (re)connection. QEMU 7.2 does not
        always bring a vhost-user-blk device back when its backend is restarted quickly
        ("Failed to set msg fds", "vhost start failed" in its log); such a device is not
        released by the guest on device_del."""
        log = self.vms[name].qemu_log()
        return "vhost start failed" in log or "Failed to set msg fds" in log

    def wait_guests(self):
        for vm in self.vms.values():
            vm.wait_ready(timeout=180)

    def free_slots(self, name):
        return SLOTS - len(self.qemu_devices(name)[0])

    # -----------------------------------------------------------------------------------------
    # Files and cgroups

    @property
    def runtime(self):
        return self.wd / "run"

    def state_file(self):
        """(VM names, {emulator id: vm}) from RUNTIME/state.jsonl."""
        try:
            text = (self.runtime / "state.jsonl").read_text()
        except FileNotFoundError:
            return set(), {}
        vms, emus = set(), {}
        for line in text.splitlines():
            e = json.loads(line)
            if "emulator" in e:
                emus[e["emulator"]] = e.get("vm")
            elif "vm" in e:
                vms.add(e["vm"])
        return vms, emus

    def cgroup_leaves(self):
        """{leaf name: [pids]} under the cgroup parent emud was given."""
        out = {}
        for leaf in self.cgroup.iterdir():
            if leaf.is_dir():
                with contextlib.suppress(OSError):
                    out[leaf.name] = [int(p) for p in
                                      (leaf / "cgroup.procs").read_text().split()]
        return out
