"""Helpers for the sandbox tests: start qemu-storage-daemon confined through sandbox-run, with
the fds emud gives it (QMP socketpair as fd 3, vhost-user listening socket as fd 4) and the argv
of emulators/vhost-user-blk.json."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import emudtest as t  # noqa: E402,F401

RUN = os.environ.get("SANDBOX_RUN", "")
QSD = "/usr/bin/qemu-storage-daemon"


def make_image(wd, size=16 * 1024 * 1024, data=b""):
    img = wd / "disk0.img"
    with open(img, "wb") as f:
        f.write(data)
        f.truncate(size)
    os.chmod(img, 0o666)  # the emulator runs as an unprivileged uid
    os.chmod(wd.path if hasattr(wd, "path") else str(wd), 0o755)
    return img


class Qsd:
    """A confined qsd. .qmp is connected after start(); .lines are sandbox-run's stdout lines."""

    def __init__(self, wd, img, policy="vhost-user-blk", mode="enforce", readonly=False,
                 learn_out=None, name=None, policy_dir=None):
        self.sock_path = Path(str(wd)) / "vhost-blk0.sock"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.sock_path))
        self.listener.listen(1)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        ro = "on" if readonly else "off"
        argv = [QSD,
                "--chardev", "socket,id=mon0,fd=3",
                "--monitor", "chardev=mon0",
                "--blockdev", f"driver=file,node-name=file0,filename={img},read-only={ro}",
                "--blockdev", f"driver=raw,node-name=disk0,file=file0,read-only={ro}",
                "--export", ("type=vhost-user-blk,id=export0,node-name=disk0,"
                             f"writable={'off' if readonly else 'on'},num-queues=1,"
                             "addr.type=fd,addr.str=4")]
        cmd = [RUN, "--policy", policy, "--mode", mode, "--name", name or f"qsd-{os.getpid()}",
               "--bind", f"{img}:{'ro' if readonly else 'rw'}",
               "--fd", str(theirs.fileno()), "--fd", str(self.listener.fileno())]
        if policy_dir:
            cmd += ["--policy-dir", str(policy_dir)]
        if learn_out:
            cmd += ["--learn-out", str(learn_out)]
        self.log = open(Path(str(wd)) / "qsd.log", "wb")
        self.proc = subprocess.Popen(cmd + ["--"] + argv,
                                     pass_fds=[theirs.fileno(), self.listener.fileno()],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.log)
        theirs.close()
        self.lines = []
        first = self.proc.stdout.readline().decode()
        self.lines.append(first.strip())
        assert first.startswith("started "), f"sandbox-run: {first!r} {self.log_text()}"
        self.pid = int(first.split()[1])
        self.qmp = t.QMP(sock=ours, timeout=20)

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signal sandbox-run (which passes it on), collect its output, return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.lines += out.decode().splitlines()
        self.qmp.close()
        self.listener.close()
        self.log.close()
        return self.proc.returncode

    def wait(self, timeout=15):
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.lines += out.decode().splitlines()
        return self.proc.returncode


def host_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    return None


def needs():
    if not RUN or not os.path.exists(RUN):
        t.skip("SANDBOX_RUN not built")
    if not os.path.exists(QSD):
        t.skip(f"{QSD} not installed")
    r = subprocess.run(["unshare", "-U", "-m", "-p", "-f", "true"], capture_output=True)
    if r.returncode != 0:
        t.skip("this machine cannot create user+mount+pid namespaces: " + r.stderr.decode())
