#!/usr/bin/env python3
"""learn → dump → enforce on qemu-storage-daemon. Learning starts from "qsd-learn-base", a policy
that is only the generic base (so qsd's own needs, sockets and block I/O included, must be
learned); the workload is start, QMP greeting, query-block-exports, a vhost-user client that
connects and hangs up, SIGTERM. The dumped policy, loaded in enforce mode with @default kill,
then runs the same workload with no denial and exit status 0."""

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sbtest as s  # noqa: E402
t = s.t


def workload(q):
    exports = q.qmp.cmd("query-block-exports")
    assert [e["id"] for e in exports] == ["export0"], exports
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(str(q.sock_path))
    c.close()
    q.qmp.cmd("query-block-exports")  # still alive after the client went away


def test(steps):
    with t.Workdir() as pdir:
        learned = Path(str(pdir)) / "learned-qsd.policy"
        with t.Workdir() as wd:
            img = s.make_image(wd)
            with steps.step("learn mode: qsd runs, unknown syscalls are recorded"):
                q = s.Qsd(wd, img, policy="qsd-learn-base", mode="learn", learn_out=learned)
                workload(q)
                rc = q.stop()
                assert rc == 0, (rc, q.lines, q.log_text())
                allowed = [ln for ln in q.lines if "seccomp allowed" in ln]
                print(f"  {len(allowed)} syscalls learned")
                assert allowed, q.lines
            text = learned.read_text()
            for name in ("accept4", "recvmsg", "sendmsg"):
                assert f"\n{name}\n" in text, (name, text)
            assert "\nexecve" not in text, "the launcher's own execve must not be learned"
        with t.Workdir() as wd:
            img = s.make_image(wd)
            with steps.step("enforce mode with the learned policy: same workload, no denial"):
                q = s.Qsd(wd, img, policy="learned-qsd", mode="enforce", policy_dir=pdir)
                workload(q)
                rc = q.stop()
                assert rc == 0, (rc, q.lines, q.log_text())
                assert not any("seccomp" in ln for ln in q.lines), q.lines


if __name__ == "__main__":
    s.needs()
    t.main(test, needs=(s.QSD,), guest=False)
