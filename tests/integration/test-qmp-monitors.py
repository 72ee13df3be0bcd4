#!/usr/bin/env python3
"""A VM registered with several QMP monitors (emuctl vm-add --qmp A --qmp B --qmp C):

  - the VM's proxy spreads its clients over the three monitors (each monitor's chardev log,
    written by QEMU, shows which client's command it ran);
  - an emud restart adopts the VM with all its monitors (the state file keeps them);
  - bad monitor lists are refused with a clear error and register nothing: a relative path,
    the same path twice, a socket nobody listens on.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

N = 3


def spread(path, logs, tag):
    """N clients each run a command naming themselves; return which log saw which client."""
    clients = [t.QMP(path) for _ in range(N)]
    try:
        for i, q in enumerate(clients):
            try:
                q.cmd("qom-list", path=f"/no-such/{tag}-{i}")
                raise AssertionError("qom-list of a missing path succeeded")
            except t.QMPError as e:
                assert f"{tag}-{i}" in e.desc, e.desc
        # QEMU appends to a chardev's log after writing to its socket: the reply can come first.
        t.poll_until(lambda: all(any(f"{tag}-{i}" in log.read_text() for log in logs)
                                 for i in range(N)), 30, f"every {tag} command in some log")
        owners = []
        for log in logs:
            text = log.read_text()
            owners.append([i for i in range(N) if f"{tag}-{i}" in text])
        return owners
    finally:
        for q in clients:
            q.close()


def negotiated(logs, count):
    """Every monitor has answered qmp_capabilities `count` times (once per emud)."""
    return all(log.exists() and log.read_text().count('"return": {}') >= count for log in logs)


def test(steps):
    t.become_subreaper()
    with t.Workdir() as wd:
        socks = [wd / f"mon{i}.sock" for i in range(N)]
        logs = [wd / f"mon{i}.out" for i in range(N)]
        extra = []
        for i in range(N):
            extra += ["-chardev", f"socket,id=mon{i},path={socks[i]},server=on,wait=off,"
                      f"logfile={logs[i]}", "-mon", f"chardev=mon{i},mode=control"]
        with t.VM(wd, slots=1, extra_args=extra) as vm, t.Bus(wd) as bus:
            emud = t.Emud(wd, bus)
            with steps.step("vm-add with three monitors: clients spread over them"):
                args = [a for s in socks for a in ("--qmp", s)]
                r = emud.emuctl("vm-add", "vm1", *args, check=True)
                assert f"{N - 1} more monitors" in r.stdout, r.stdout
                path = emud.emuctl("qmp-path", "vm1", check=True).stdout.strip()
                t.poll_until(lambda: negotiated(logs, 1), 30, "negotiation on every monitor")
                owners = spread(path, logs, "first")
                assert sorted(sum(owners, [])) == list(range(N)), owners
                assert all(len(o) == 1 for o in owners), owners
                print("  clients per monitor:", owners)

            with steps.step("after an emud restart the VM has all three monitors again"):
                emud.stop()
                emud = t.Emud(wd, bus)
                t.poll_until(lambda: negotiated(logs, 2), 30, "re-negotiation on every monitor")
                owners = spread(path, logs, "again")
                assert all(len(o) == 1 for o in owners), owners

            with steps.step("bad monitor lists: clear errors, nothing registered"):
                bad = [
                    (["--qmp", socks[0], "--qmp", "rel.sock"], "must be absolute"),
                    (["--qmp", wd / "qmp-test.sock", "--qmp", wd / "qmp-test.sock"],
                     "named twice"),
                    (["--qmp", vm.qmp_path, "--qmp", wd / "nobody.sock"], "nobody.sock"),
                ]
                for args, why in bad:
                    r = emud.emuctl("vm-add", "vm2", *args)
                    assert r.returncode == 1 and why in r.stderr, (args, r.returncode, r.stderr)
                    print("  refused:", r.stderr.strip())
                listed = emud.emuctl("vm-list", check=True).stdout
                assert "vm2" not in listed, listed
                assert not (emud.runtime_dir / "vm" / "vm2").exists()
            emud.stop()


t.main(test)
