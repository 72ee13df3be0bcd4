#!/usr/bin/env python3
"""qemu-storage-daemon confined with the shipped vhost-user-blk policy enforced: its QMP greeting
arrives and query-block-exports answers through the fds emud passes; it runs as an unprivileged
uid in its own pid namespace; it stops on SIGTERM as pid 1 of that namespace. Then a policy
without accept4 makes it break the policy the moment a client connects: the denial is reported by
name and number, and the emulator is stopped."""

import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sbtest as s  # noqa: E402
t = s.t


def test(steps):
    with t.Workdir() as wd:
        img = s.make_image(wd)
        with steps.step("confined qsd greets on QMP and lists its export"):
            q = s.Qsd(wd, img)
            try:
                print(f"  qemu {q.qmp.greeting['QMP']['version']['qemu']}")
                exports = q.qmp.cmd("query-block-exports")
                assert [e["id"] for e in exports] == ["export0"], exports
                uid = s.host_uid(q.pid)
                assert uid not in (None, 0), f"qsd runs as uid {uid} on the host"
                with open(f"/proc/{q.pid}/status") as f:
                    st = f.read()
                assert "NoNewPrivs:\t1" in st and "Seccomp:\t2" in st, st
                assert "CapEff:\t0000000000000000" in st, st
                nspid = [ln for ln in st.splitlines() if ln.startswith("NSpid:")][0]
                assert nspid.split()[-1] == "1", nspid  # pid 1 of its own namespace
            except BaseException:
                q.stop()
                print(q.log_text())
                raise
        with steps.step("SIGTERM stops it (qsd handles SIGTERM, even as pid 1)"):
            rc = q.stop()
            assert rc == 0, (rc, q.lines, q.log_text())
            assert not any("seccomp" in ln for ln in q.lines), q.lines

    with t.Workdir() as wd:
        img = s.make_image(wd)
        with steps.step("a denied accept4 is reported by name and qsd is stopped"):
            q = s.Qsd(wd, img, policy="qsd-no-accept")
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.connect(str(q.sock_path))
            rc = q.wait(timeout=15)
            c.close()
            if rc is None:
                q.stop()
            print("  " + "\n  ".join(q.lines))
            assert any("seccomp denied accept4(" in ln and "(nr 288); emulator stopped" in ln
                       for ln in q.lines), q.lines
            assert "exited signal 9" in q.lines, q.lines
            q.stop()


if __name__ == "__main__":
    s.needs()
    t.main(test, needs=(s.QSD,), guest=False)
