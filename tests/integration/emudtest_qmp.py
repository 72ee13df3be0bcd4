"""A small synchronous QMP client for the integration tests (standard library only).

Replies are matched to commands by "id"; events that arrive meanwhile are buffered for
wait_event(). It speaks to QEMU, qemu-storage-daemon and, through the same code, to emud's QMP
proxy, so the tests can send one script both ways and compare the replies.
"""

import json
import socket
import time


class QMPError(Exception):
    """An {"error": {"class": ..., "desc": ...}} reply."""

    def __init__(self, cls, desc):
        super().__init__(f"{cls}: {desc}")
        self.cls = cls
        self.desc = desc


def try_connect(path):
    """A connected unix stream socket, or None while nothing listens on path yet."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        s.connect(str(path))
        return s
    except (FileNotFoundError, ConnectionRefusedError):
        s.close()
        return None


class QMP:
    """QMP client over a unix stream socket.

    QMP(path): connect, retrying until the socket exists and accepts (bounded by timeout);
    QMP(sock=s): use a connected socket, e.g. one end of a socketpair given to qsd.
    alive(), if given, is called between connection attempts and should raise if the server's
    process is gone, so a crash is reported at once rather than as a timeout.
    The greeting is kept in .greeting; capabilities are negotiated unless negotiate=False."""

    def __init__(self, path=None, *, sock=None, timeout=30, negotiate=True, alive=None):
        self.timeout = timeout
        self.events = []
        self._buf = b""
        self._id = 0
        if sock is None:
            sock = self._connect(path, timeout, alive)
        self.sock = sock
        self.greeting = self._recv(time.monotonic() + timeout)
        if "QMP" not in self.greeting:
            raise QMPError("ProtocolError", f"no QMP greeting: {self.greeting}")
        if negotiate:
            self.cmd("qmp_capabilities")

    @staticmethod
    def _connect(path, timeout, alive):
        deadline = time.monotonic() + timeout
        while True:
            s = try_connect(path)
            if s:
                return s
            if alive:
                alive()
            if time.monotonic() >= deadline:
                raise TimeoutError(f"QMP socket {path} did not accept within {timeout}s")
            time.sleep(0.01)

    def _recv(self, deadline):
        """Next JSON message (reply or event), waiting until deadline (monotonic)."""
        while True:
            line, sep, rest = self._buf.partition(b"\n")
            if sep:
                self._buf = rest
                if line.strip():
                    return json.loads(line)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no QMP message before the timeout")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no QMP message before the timeout") from None
            if not data:
                raise ConnectionError("QMP connection closed")
            self._buf += data

    def execute(self, name, args=None, fds=(), timeout=None):
        """Send a command (with fds as SCM_RIGHTS, if any) and return its "return" value.

        Raises QMPError for an error reply."""
        self._id += 1
        msg_id = f"t{self._id}"
        msg = {"execute": name, "id": msg_id}
        if args:
            msg["arguments"] = args
        data = json.dumps(msg).encode() + b"\n"
        self.sock.settimeout(timeout or self.timeout)
        if fds:
            sent = socket.send_fds(self.sock, [data], list(fds))
            data = data[sent:]
        self.sock.sendall(data)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._recv(deadline)
            if "event" in msg:
                self.events.append(msg)
            elif msg.get("id") == msg_id:
                if "error" in msg:
                    raise QMPError(msg["error"].get("class"), msg["error"].get("desc"))
                return msg.get("return")
            # A reply to another id (a command given up after a timeout) is dropped.

    def cmd(self, name, **args):
        """execute() with keyword arguments; use **{"node-name": x} for names with dashes."""
        return self.execute(name, args)

    def send_fd(self, fd, name):
        """getfd: hand fd to the server under name (for x-pci-proxy-dev fd=, chardev fd=...)."""
        return self.execute("getfd", {"fdname": name}, fds=[fd])

    def wait_event(self, name, pred=None, timeout=30):
        """Return (and remove from the buffer) the first event `name` with pred(event) true,
        looking at buffered events first, then reading up to timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and (pred is None or pred(ev)):
                    return self.events.pop(i)
            try:
                msg = self._recv(deadline)
            except TimeoutError:
                raise TimeoutError(f"no {name} event within {timeout}s") from None
            if "event" in msg:
                self.events.append(msg)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

