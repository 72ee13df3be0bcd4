"""Integration-test harness for emud: real QEMU, a real test guest, a private D-Bus, the daemon.

Standard library only. A test is a script that exits 0 (pass), 1 (fail) or 77 (skipped, reason
printed). Typical shape:

    import emudtest as t

    def test(steps):
        with t.Workdir() as wd, t.VM(wd) as vm:
            vm.wait_ready()
            with steps.step("guest answers"):
                assert vm.run("true")[0] == 0

    t.main(test, needs=("qemu-system-x86_64",))

Everything waits on an observed event (a socket that accepts, a marker on the serial console, a
QMP event, a notify datagram) with a bounded timeout; there are no fixed sleeps on the happy path,
only short polls.
"""

import base64
import contextlib
import fcntl
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

# Part of this module's API; split out only to keep files short.
from emudtest_qmp import QMP, QMPError, try_connect  # noqa: F401
from emudtest_procs import (REPO, Bus, Emud, poll_until, stop_process,  # noqa: F401
                            become_subreaper, emuctl, emuctl_bin, emud_bin, emud_usable,
                            pids_with, proc_state, qsd_pids, wait_gone)

QEMU = os.environ.get("EMUD_QEMU", "qemu-system-x86_64")
QSD = os.environ.get("EMUD_QSD", "qemu-storage-daemon")
READY_MARKER = b"EMUD-GUEST-READY\n"


class Skip(Exception):
    """Raised (or use skip()) when the test cannot run here; main() turns it into exit 77."""


def skip(reason):
    print(f"SKIP: {reason}", flush=True)
    sys.exit(77)


# ---------------------------------------------------------------------------------------------
# Test structure


class Steps:
    """Named steps that print PASS/FAIL lines with their duration; the first failure propagates."""

    def __init__(self):
        self.timings = {}

    @contextlib.contextmanager
    def step(self, name):
        t0 = time.monotonic()
        try:
            yield
        except Exception as e:
            print(f"FAIL: {name}: {type(e).__name__}: {e}", flush=True)
            raise
        dt = time.monotonic() - t0
        self.timings[name] = dt
        print(f"PASS: {name} ({dt * 1000:.0f} ms)", flush=True)


def main(fn, needs=(QEMU,), guest=True):
    """Run fn(steps) as a test: exit 77 if a binary in needs is missing, 1 on any exception, else 0.

    guest=True builds the test guest first (a build failure is a failure, not a skip)."""
    reason = qemu_usable(binaries=needs, guest=False)
    if reason:
        skip(reason)
    steps = Steps()
    t0 = time.monotonic()
    try:
        if guest:
            with steps.step("test guest built or found"):
                ensure_guest()
        fn(steps)
    except Skip as e:
        skip(str(e))
    except Exception:
        traceback.print_exc()
        print(f"FAIL ({time.monotonic() - t0:.1f} s)", flush=True)
        sys.exit(1)
    print(f"PASS ({time.monotonic() - t0:.1f} s)", flush=True)
    sys.exit(0)


def image(path, size, pattern=b""):
    """A sparse disk image starting with pattern. Mode 0666: emud runs emulators as an
    unprivileged user, which must be able to open the image (emud checks and refuses
    otherwise)."""
    with open(path, "wb") as f:
        f.write(pattern)
        f.truncate(size)
    os.chmod(path, 0o666)
    return path


class Workdir:
    """A short temporary directory (unix socket paths must fit in 108 bytes).

    Removed on success; kept, with its path printed, when the block raised or EMUD_TEST_KEEP=1,
    so that serial.log, qemu.log and emud.log can be read after a failure."""

    def __init__(self, prefix="emud-t-"):
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))

    def __truediv__(self, name):
        return self.path / name

    def __str__(self):
        return str(self.path)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # Emulators outlive emud by design; whatever still runs on this directory's files
        # (a test that failed half-way) must not outlive the test.
        mine = str(self.path).encode()
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != os.getpid():
                try:
                    if mine in Path(f"/proc/{d}/cmdline").read_bytes():
                        os.kill(int(d), signal.SIGKILL)
                except OSError:
                    pass
        if exc_type is not None or os.environ.get("EMUD_TEST_KEEP") == "1":
            print(f"logs kept in {self.path}", flush=True)
        else:
            shutil.rmtree(self.path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# Test guest and QEMU


def guest_dir():
    return Path(os.environ.get("EMUD_GUEST_DIR") or REPO / "build" / "guest")


def _guest_files(d=None):
    d = d or guest_dir()
    return d / "vmlinuz", d / "initrd.img"


def ensure_guest():
    """Build the guest with tests/guest/mkguest.sh if its images are missing or older than the
    script; return the dir.

    A lock file serialises tests that start in parallel."""
    d = guest_dir()
    script = REPO / "tests/guest/mkguest.sh"

    def current():
        # Images older than mkguest.sh lack what it was changed to add (a module, say).
        return all(p.exists() and p.stat().st_mtime >= script.stat().st_mtime
                   for p in _guest_files(d))
    if current():
        return d
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(str(d) + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not current():
            r = subprocess.run([str(script), str(d)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"mkguest.sh failed ({r.returncode}):\n{r.stdout}")
    return d


def qemu_usable(binaries=(QEMU,), guest=True):
    """None if the QEMU binaries (and, with guest=True, the guest images) exist, else why not."""
    for b in binaries:
        if not shutil.which(b):
            return f"{b} not found in PATH"
    if guest:
        missing = [str(p) for p in _guest_files() if not p.exists()]
        if missing:
            return f"test guest not built ({', '.join(missing)}; run tests/guest/mkguest.sh)"
    return None


def _accel():
    # KVM is opt-in: on these hosts /dev/kvm exists but a KVM guest hangs (nested virtualisation).
    if os.environ.get("EMUD_TEST_KVM") == "1":
        try:
            os.close(os.open("/dev/kvm", os.O_RDWR))
            return ["-accel", "kvm", "-cpu", "host"]
        except OSError:
            pass
    return ["-accel", "tcg"]


class VM:
    """A q35 guest with `slots` empty pcie-root-ports (rp1..rpN) to hot-plug into.

    vm.qmp_path  the monitor reserved for the daemon under test (the test must not connect);
    vm.qmp       the test's own QMP connection (a second monitor);
    serial       ttyS0 on a unix socket, read by a thread into memory and DIR/serial.log.

    QEMU starts paused (-S) and is continued once the serial reader is connected, so no console
    output is lost."""

    def __init__(self, workdir, slots=2, guest=None, memory="512M", extra_args=(),
                 start_timeout=30):
        self.dir = Path(str(workdir))
        self.qmp_path = self.dir / "qmp.sock"
        self.test_qmp_path = self.dir / "qmp-test.sock"
        self.serial_path = self.dir / "serial.sock"
        kernel, initrd = _guest_files(Path(guest) if guest else None)
        argv = [QEMU,
                "-M", "q35,memory-backend=mem",
                # vhost-user needs guest RAM the backend can map: shared memfd.
                "-object", f"memory-backend-memfd,id=mem,size={memory},share=on",
                "-m", memory,
                "-nodefaults", "-no-user-config", "-display", "none", *_accel(),
                "-kernel", str(kernel), "-initrd", str(initrd),
                "-append", "console=ttyS0 panic=-1 quiet",
                "-no-reboot", "-S",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-qmp", f"unix:{self.test_qmp_path},server=on,wait=off",
                "-chardev", f"socket,id=ser0,path={self.serial_path},server=on,wait=off",
                "-serial", "chardev:ser0"]
        for n in range(1, slots + 1):
            argv += ["-device", f"pcie-root-port,id=rp{n},chassis={n},slot={n}"]
        argv += list(extra_args)
        self.argv = argv

        self._out = bytearray()          # serial output, with \r removed
        self._cond = threading.Condition()
        self._serial_eof = False
        self._seq = 0
        self.qmp = None
        self._serial = None
        self._thread = None
        self.ready_time = None
        self._log = open(self.dir / "qemu.log", "wb")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        try:
            self.qmp = QMP(self.test_qmp_path, timeout=start_timeout, alive=self._check_alive)
            self._serial = poll_until(lambda: try_connect(self.serial_path), start_timeout,
                                      "the serial socket", alive=self._check_alive)
            self._thread = threading.Thread(target=self._reader, daemon=True)
            self._thread.start()
            self.qmp.cmd("cont")
        except Exception as e:
            # A QEMU that rejects its arguments may still be exiting when its socket breaks.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
            dead = self.proc.returncode is not None
            self.stop()
            if dead:    # the real reason is in QEMU's output, not in the broken socket
                raise RuntimeError(f"QEMU exited with {self.proc.returncode} at start:\n"
                                   f"{self.qemu_log()}") from e
            raise
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def _check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"QEMU exited with {self.proc.returncode}: {self.qemu_log()}")

    def qemu_log(self):
        return (self.dir / "qemu.log").read_text(errors="replace")

    def _reader(self):
        with open(self.dir / "serial.log", "ab") as log:
            while True:
                try:
                    data = self._serial.recv(65536)
                except OSError:
                    data = b""
                with self._cond:
                    if not data:
                        self._serial_eof = True
                        self._cond.notify_all()
                        return
                    log.write(data)
                    log.flush()
                    self._out += data.replace(b"\r", b"")
                    self._cond.notify_all()

    def serial_text(self):
        with self._cond:
            return self._out.decode(errors="replace")

    def _wait_serial(self, fn, timeout, what):
        """Wait until fn(buffer) is truthy; fails early if QEMU dies or the console closes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                r = fn(self._out)
                if r:
                    return r
                left = deadline - time.monotonic()
                if left <= 0 or self._serial_eof or self.proc.poll() is not None:
                    why = "timed out" if left <= 0 else "QEMU or its console went away"
                    tail = self._out[-2000:].decode(errors="replace")
                    raise TimeoutError(f"{why} waiting for {what} ({timeout}s); serial tail:\n"
                                       f"{tail}")
                self._cond.wait(min(left, 0.2))

    def wait_ready(self, timeout=180):
        """Wait for the guest's EMUD-GUEST-READY; returns seconds since QEMU was started."""
        if self.ready_time is None:
            self._wait_serial(lambda b: READY_MARKER in b, timeout, "EMUD-GUEST-READY")
            self.ready_time = time.monotonic() - self.t_start
        return self.ready_time

    def run(self, cmd, timeout=60):
        """Run one shell command in the guest; returns (rc, output) with stdout and stderr merged.

        Output is text off a serial tty: \\r is dropped and kernel messages may interleave."""
        self._seq += 1
        tag = f"c{self._seq}"
        line = f"{tag} {base64.b64encode(cmd.encode()).decode()}\n".encode()
        if len(line) >= 4000:    # the tty's canonical line buffer is 4096 bytes
            raise ValueError("guest command too long for one console line")
        pat = re.compile(rb"EMUD-BEGIN " + tag.encode() + rb"\n(.*?)\nEMUD-DONE " +
                         tag.encode() + rb" (\d+)\n", re.S)
        with self._cond:
            start = len(self._out)
        self._serial.sendall(line)
        m = self._wait_serial(lambda b: pat.search(b, start), timeout, f"guest command {cmd!r}")
        return int(m[2]), m[1].decode(errors="replace")

    def stop(self, timeout=10):
        """Quit QEMU (QMP quit, SIGKILL if it lingers) and reap it. Safe to call twice."""
        if self.proc.poll() is None and self.qmp is not None:
            with contextlib.suppress(Exception):
                self.qmp.cmd("quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        stop_process(self.proc, signal.SIGKILL)
        if self.qmp is not None:
            self.qmp.close()
        if self._serial is not None:
            with contextlib.suppress(OSError):
                self._serial.shutdown(socket.SHUT_RDWR)
            self._serial.close()
        if self._thread is not None:
            self._thread.join(5)
        self._log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()



