#!/usr/bin/env python3
"""Who may manage emud on the system bus: the project's policy (systemd/org.emud.Manager1.conf)
in a real dbus-daemon on the standard socket, emud as the system instance, and the users and
group made by the project's sysusers.d file (systemd-sysusers, as the package does).

A member of the group emud may call every method (reload; vm-remove reaches emud and gets its
UnknownVM); a user outside it (nobody) may list and read but is refused the rest with
AccessDenied; root may do everything. The users this test makes are removed again."""

import os
import pwd
import grp
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402
import emudtest_libvirt as lvt  # noqa: E402

MEMBER = "emudt-member"


def as_user(user, *args):
    """emuctl ARGS as user (its groups from the group database), on the system bus."""
    pw = pwd.getpwnam(user)
    return subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                           "--init-groups",
                           str(t.emuctl_bin()), *args],
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})


def existing(names, db):
    out = set()
    for n in names:
        try:
            db(n)
            out.add(n)
        except KeyError:
            pass
    return out


def test(steps):
    if os.geteuid() != 0:
        t.skip("needs root (it makes users and runs the system bus)")
    users_before = existing(["emud-emu", MEMBER], pwd.getpwnam)
    groups_before = existing(["emud", MEMBER], grp.getgrnam)
    try:
        with steps.step("systemd-sysusers makes emud-emu and the group emud from the file"):
            subprocess.run(["systemd-sysusers", str(t.REPO / "systemd" / "emud.sysusers")],
                           check=True, capture_output=True, text=True)
            emu = pwd.getpwnam("emud-emu")
            assert emu.pw_uid != 0 and emu.pw_shell == "/usr/sbin/nologin", emu
            grp.getgrnam("emud")
            if MEMBER not in users_before:
                subprocess.run(["useradd", "-r", "-M", "-G", "emud", MEMBER], check=True)
            assert MEMBER in grp.getgrnam("emud").gr_mem
        with t.Workdir() as wd:
            os.chmod(wd.path, 0o711)
            conf = wd / "emud.conf"
            conf.write_text("[emud]\nlibvirt-uri=\n")
            with lvt.SystemBus(wd), t.Emud(wd, None, "--config", conf):
                run(steps)
    finally:
        if MEMBER not in users_before:
            subprocess.run(["userdel", MEMBER], capture_output=True)
        if MEMBER not in groups_before:
            subprocess.run(["groupdel", MEMBER], capture_output=True)
        if "emud-emu" not in users_before:
            subprocess.run(["userdel", "emud-emu"], capture_output=True)
        if "emud" not in groups_before:
            subprocess.run(["groupdel", "emud"], capture_output=True)


def run(steps):
    with steps.step("a member of emud may call every method"):
        r = as_user(MEMBER, "reload")
        assert r.returncode == 0, r
        r = as_user(MEMBER, "vm-remove", "no-such-vm")
        assert r.returncode == 1 and "no VM named 'no-such-vm'" in r.stderr, r
        assert as_user(MEMBER, "kinds").returncode == 0

    with steps.step("another user may read, and is refused the rest"):
        r = as_user("nobody", "kinds")
        assert r.returncode == 0 and "vhost-user-blk" in r.stdout, r
        assert as_user("nobody", "list").returncode == 0
        for args in (["reload"], ["vm-remove", "no-such-vm"],
                     ["spawn", "vm1", "vhost-user-blk", "d0", "image=/dev/null"]):
            r = as_user("nobody", *args)
            assert r.returncode == 1 and r.stderr == (
                "emuctl: access denied: on the system bus only root and the members of the "
                "group emud may do this (see emud(8))\n"), (args, r)

    with steps.step("root may do everything"):
        r = subprocess.run([str(t.emuctl_bin()), "reload"], capture_output=True, text=True,
                           env={"PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r


t.main(test, needs=("dbus-daemon", "setpriv", "systemd-sysusers"), guest=False)
