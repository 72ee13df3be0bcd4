"""Helpers for the QMP proxy tests: a guest-less QEMU, qmp-proxyd, and a raw QMP client.

Standard library only. Tests exit 0 (pass), 1 (fail) or 77 (QEMU binaries missing)."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The integration harness's bounded polling, shared rather than written twice.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from emudtest_procs import poll_until  # noqa: E402

QEMU = os.environ.get("EMUD_QEMU", "qemu-system-x86_64")
QSD = os.environ.get("EMUD_QSD", "qemu-storage-daemon")
PROXYD = os.environ.get("QMP_PROXYD", "")
TIMEOUT = 30


def need(*binaries):
    for b in binaries:
        if not shutil.which(b):
            print(f"SKIP: {b} is not installed", flush=True)
            sys.exit(77)
    if not PROXYD or not os.access(PROXYD, os.X_OK):
        raise RuntimeError("QMP_PROXYD must name the built qmp-proxyd")


def main(fn, needs=(QEMU,)):
    need(*needs)
    with tempfile.TemporaryDirectory(prefix="emud-proxy-") as d:
        try:
            fn(Path(d))
        except Exception:
            import traceback
            traceback.print_exc()
            for log in Path(d).glob("*.log"):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")
            sys.exit(1)
    print("PASS")
    sys.exit(0)


def wait_for(fn, what, timeout=TIMEOUT, alive=None):
    return poll_until(fn, timeout, what, alive=alive)


class Proc:
    def __init__(self, argv, log):
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.proc.args[0]} exited with {self.proc.returncode}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Qemu(Proc):
    """A paused q35 machine with no guest, two root ports and two QMP monitors."""

    def __init__(self, d, name="qemu", logged=0):
        """logged: that many more monitors (qemu-m<i>.sock), each logging what QEMU writes
        to it in qemu-m<i>.out."""
        self.name = name
        self.qmp = d / f"{name}-1.sock"
        self.qmp2 = d / f"{name}-2.sock"
        self.logged = [(d / f"{name}-m{i}.sock", d / f"{name}-m{i}.out") for i in range(logged)]
        extra = []
        for i, (sock, out) in enumerate(self.logged):
            extra += ["-chardev", f"socket,id=lm{i},path={sock},server=on,wait=off,logfile={out}",
                      "-mon", f"chardev=lm{i},mode=control"]
        super().__init__([QEMU, "-M", "q35", "-nodefaults", "-no-user-config", "-display",
                          "none", "-accel", "tcg", "-m", "128M", "-S",
                          "-device", "pcie-root-port,id=rp1,chassis=1,slot=1",
                          "-device", "pcie-root-port,id=rp2,chassis=2,slot=2",
                          "-qmp", f"unix:{self.qmp},server=on,wait=off",
                          "-qmp", f"unix:{self.qmp2},server=on,wait=off", *extra],
                         d / f"{name}.log")
        wait_for(lambda: all(p.exists() for p in [self.qmp, self.qmp2] +
                             [s for s, _ in self.logged]), "QEMU's sockets", alive=self.alive)


class Proxyd(Proc):
    def __init__(self, d, qmp, *args, name="proxyd"):
        self.path = d / f"{name}.sock"
        super().__init__([PROXYD, "--qmp", str(qmp), "--listen", str(self.path), *args],
                         d / f"{name}.log")
        wait_for(lambda: self.path.exists(), "the proxy socket", alive=self.alive)


class Raw:
    """A QMP connection at the message level: send anything, see everything."""

    def __init__(self, path, timeout=TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self.sock.connect(str(path))
        self.timeout = timeout
        self.buf = b""
        self.events = []
        self.greeting = self.recv()

    def send(self, msg, fds=()):
        data = msg if isinstance(msg, bytes) else json.dumps(msg).encode() + b"\n"
        self.sock.settimeout(self.timeout)
        if fds:
            n = socket.send_fds(self.sock, [data], list(fds))
            data = data[n:]
        self.sock.sendall(data)

    def recv(self):
        deadline = time.monotonic() + self.timeout
        while True:
            line, sep, rest = self.buf.partition(b"\n")
            if sep:
                self.buf = rest
                if line.strip():
                    return json.loads(line)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no QMP message")
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("QMP connection closed")
            self.buf += data

    def reply(self, match=lambda m: True):
        """The next non-event message for which match() holds; events are kept."""
        while True:
            m = self.recv()
            if "event" in m:
                self.events.append(m)
            elif match(m):
                return m
            else:
                raise AssertionError(f"unexpected reply {m}")

    def call(self, execute, args=None, id="c", fds=(), **extra):
        msg = {"execute": execute, "id": id, **extra}
        if args is not None:
            msg["arguments"] = args
        self.send(msg, fds)
        return self.reply()

    def ok(self, execute, args=None, **kw):
        r = self.call(execute, args, **kw)
        assert "return" in r, f"{execute}: {r}"
        return r["return"]

    def negotiate(self, oob=False):
        r = self.call("qmp_capabilities", {"enable": ["oob"]} if oob else None, id="neg")
        assert r == {"return": {}, "id": "neg"}, r
        return self

    def wait_event(self, name):
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            m = self.recv()
            if "event" in m:
                self.events.append(m)

    def close(self):
        self.sock.close()


def strip_timestamps(msgs):
    out = []
    for m in msgs:
        m = dict(m)
        if "event" in m:
            assert set(m["timestamp"]) == {"seconds", "microseconds"}, m
            del m["timestamp"]
        out.append(m)
    return out
