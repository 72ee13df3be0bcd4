"""Processes for the integration tests: waiting on pids, and the daemon side of a test.

Bus (a private dbus-daemon), Emud (the daemon under test, with a notify socket) and emuctl().
emudtest re-exports everything here; import emudtest, not this module.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def poll_until(fn, timeout, what, interval=0.01, alive=None):
    """Call fn() until it returns something truthy; short polls, bounded by timeout.

    alive(), if given, is checked each round and should raise if waiting has become pointless
    (the process we wait on died)."""
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r:
            return r
        if alive:
            alive()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def proc_state(pid):
    """State letter of /proc/PID/stat (R, S, D, Z, ...), or None when the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm may contain spaces and parentheses; the state follows the last ')'.
    return stat[stat.rindex(b")") + 2:][:1].decode()


def pids_with(binary, wd):
    """Live processes (zombies excluded) of binary whose command line names this test's files,
    sorted."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            except OSError:
                continue
            if binary.encode() in cmd and str(wd).encode() in cmd and \
                    proc_state(int(d)) not in (None, "Z"):
                out.append(int(d))
    return sorted(out)


def qsd_pids(wd):
    """qemu-storage-daemon processes serving this test's files (zombies excluded), sorted."""
    return pids_with("qemu-storage-daemon", wd)


def wait_gone(pid, timeout=10):
    """Wait until pid no longer exists (a zombie still exists: someone must reap it)."""
    try:
        poll_until(lambda: proc_state(pid) is None, timeout, f"pid {pid} to go away")
        return True
    except TimeoutError:
        return False


def stop_process(proc, sig=signal.SIGTERM, timeout=10):
    """Signal, wait up to timeout, then SIGKILL; always reaps. Returns the Popen returncode."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# ---------------------------------------------------------------------------------------------
# The daemon under test


def emud_bin():
    return Path(os.environ.get("EMUD_BIN") or REPO / "build" / "daemon" / "emud")


def emuctl_bin():
    return Path(os.environ.get("EMUCTL_BIN") or REPO / "build" / "cli" / "emuctl")


def emud_usable():
    """None if emud, emuctl and dbus-daemon are available, else the reason (for skip())."""
    for p in (emud_bin(), emuctl_bin()):
        if not os.access(p, os.X_OK):
            return f"{p} not built"
    if not shutil.which("dbus-daemon"):
        return "dbus-daemon not found"
    return None


class Bus:
    """A private session bus (dbus-daemon) listening on DIR/bus; .address is its address."""

    def __init__(self, workdir, timeout=10):
        d = Path(str(workdir))
        r, w = os.pipe()
        with open(d / "dbus.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["dbus-daemon", "--config-file=/usr/share/dbus-1/session.conf", "--nofork",
                 f"--print-address={w}", f"--address=unix:path={d / 'bus'}"],
                pass_fds=[w], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        os.close(w)
        # dbus-daemon prints its address once it listens: that is the readiness signal.
        buf = b""
        try:
            os.set_blocking(r, False)

            def have_line():
                nonlocal buf
                try:
                    data = os.read(r, 4096)
                except BlockingIOError:
                    return False
                if not data:
                    raise RuntimeError("dbus-daemon exited without printing its address "
                                       f"(see {d / 'dbus.log'})")
                buf += data
                return b"\n" in buf

            poll_until(have_line, timeout, "dbus-daemon's address")
        except BaseException:
            self.stop()
            raise
        finally:
            os.close(r)
        self.address = buf.split(b"\n")[0].decode()

    def stop(self):
        return stop_process(self.proc)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def emuctl(bus, *args, check=None, timeout=60, input=None):
    """Run emuctl --user ARGS on bus (bus None: emuctl ARGS on the system bus). check=None: any exit code; True: must be 0; an int: must
    be that code. Returns the CompletedProcess (text stdout/stderr)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    user = []
    if bus is not None:       # None: the system bus, on its standard socket
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
        user = ["--user"]
    r = subprocess.run([str(emuctl_bin()), *user, *map(str, args)], env=env, input=input,
                       capture_output=True, text=True, timeout=timeout)
    want = 0 if check is True else check
    if want is not None and want is not False and r.returncode != want:
        raise AssertionError(f"emuctl {' '.join(map(str, args))}: exit {r.returncode}, "
                             f"expected {want}\nstdout: {r.stdout}\nstderr: {r.stderr}")
    return r


class Emud:
    """The daemon under test, as a child with a private bus and a notify socket.

    Started as `emud --user --runtime-dir DIR/run --emulators-dir <repo>/emulators ARGS` (with
    bus None: without --user, as the system instance on the system bus); ready once it sends READY=1 on NOTIFY_SOCKET. Every notify message is kept in .notifications, and
    fds sent with FDSTORE=1 in .fdstore (closed by stop())."""

    def __init__(self, workdir, bus, *args, timeout=30, env=None):
        self.dir = Path(str(workdir))
        self.bus = bus
        self.runtime_dir = self.dir / "run"
        self.notifications = []
        self.fdstore = []
        self.notify_path = self.dir / "notify.sock"
        with contextlib.suppress(FileNotFoundError):
            self.notify_path.unlink()        # left by a previous Emud in this dir
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._notify.bind(str(self.notify_path))
        self._notify.settimeout(0.1)
        # Read notifications all the time, as systemd does: sd_notify() blocks the daemon
        # once the socket's queue is full, and a test must not be the cause of a stall.
        self._lock = threading.Lock()
        self._closing = False
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "NOTIFY_SOCKET": str(self.notify_path)}
        # The sanitizers' settings of the run (tests/run.sh: abort on the first report).
        full_env.update({k: v for k, v in os.environ.items()
                         if k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS")})
        user = []
        if bus is not None:   # None: the system bus, as the system instance
            full_env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
            user = ["--user"]
        full_env.update(env or {})
        self.argv = [str(emud_bin()), *user, "--runtime-dir", str(self.runtime_dir),
                     "--emulators-dir", str(REPO / "emulators"),
                     "--policy-dir", str(REPO / "policy" / "policies"), *map(str, args)]
        self._log = open(self.dir / "emud.log", "ab")
        self.proc = subprocess.Popen(self.argv, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=self._log)
        try:
            self.wait_notify("READY=1", timeout)
        except BaseException:
            self.kill()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return (self.dir / "emud.log").read_text(errors="replace")

    def _read_loop(self):
        while not self._closing:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(self._notify, 65536, 64)
            except (socket.timeout, BlockingIOError):
                continue
            except OSError:
                return
            text = msg.decode(errors="replace")
            with self._lock:
                self.notifications.append(text)
                self.fdstore += [(text, fd) for fd in fds]

    def wait_notify(self, item, timeout=30):
        """Wait for a notify datagram, not yet seen by the test, with the line `item`
        (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1"). A datagram sent just before emud exited
        still counts."""
        seen = len(self.notifications)

        def found():
            with self._lock:
                if any(item in n.split("\n") for n in self.notifications[seen:]):
                    return True
            if self.proc.poll() is None:
                return False
            self._drain_now()
            with self._lock:
                if any(item in n.split("\n") for n in self.notifications[seen:]):
                    return True
            raise RuntimeError(f"emud exited with {self.proc.returncode} before {item}:\n"
                               f"{self.log()}")

        poll_until(found, timeout, f"{item} from emud")

    def _drain_now(self):
        """Read what is queued on the notify socket without waiting."""
        while True:
            try:
                msg, fds, _flags, _addr = socket.recv_fds(self._notify, 65536, 64,
                                                          socket.MSG_DONTWAIT)
            except (BlockingIOError, socket.timeout, OSError):
                return
            text = msg.decode(errors="replace")
            with self._lock:
                self.notifications.append(text)
                self.fdstore += [(text, fd) for fd in fds]

    def emuctl(self, *args, check=None, timeout=60, input=None):
        return emuctl(self.bus, *args, check=check, timeout=timeout, input=input)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Send sig, wait (SIGKILL after timeout) and return the exit code (-N for signal N)."""
        rc = stop_process(self.proc, sig, timeout)
        self._close()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    def _close(self):
        if self._notify.fileno() < 0:
            return                        # already closed
        self._closing = True
        self._reader.join()
        self._drain_now()
        for _text, fd in self.fdstore:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.fdstore = []
        self._notify.close()
        self._log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.stop()
        else:
            self._close()


# ---------------------------------------------------------------------------------------------
# Orphans
#
# An emulator outlives the emud that started it; when a later emud kills it, the dead process
# is not that emud's child, so whoever inherited it must reap it. With systemd as PID 1 that is
# systemd. PID 1 of the test machines does not reap, so adoption tests make the test process a
# child subreaper and reap the orphans it inherits here, leaving its own subprocesses (whose
# exit codes the tests check) to subprocess.

_owned_pids = set()
_reaper_started = False


class _OwnedPopen(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _owned_pids.add(self.pid)


def _reap_orphans():
    me = os.getpid()
    while True:
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) in _owned_pids:
                continue
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] == "Z" and int(fields[1]) == me:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(int(d), os.WNOHANG)
        time.sleep(0.05)


def become_subreaper():
    """Inherit and reap the emulators that outlive an emud (see above)."""
    global _reaper_started
    if _reaper_started:
        return
    import ctypes
    PR_SET_CHILD_SUBREAPER = 36
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    subprocess.Popen = _OwnedPopen
    threading.Thread(target=_reap_orphans, daemon=True).start()
    _reaper_started = True
