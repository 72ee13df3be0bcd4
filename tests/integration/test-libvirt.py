#!/usr/bin/env python3
"""libvirt drives emud: a real libvirtd, a system dbus-daemon with emud's bus policy, the hook
installed in /etc/libvirt/hooks/qemu.d, emud as the system instance, a TCG guest.

1. A domain with emud metadata: virsh define + start; the guest reads the image's bytes; at the
   end virsh destroy leaves no emulator, socket, cgroup or VM behind.
2. Bad metadata (unknown kind, missing image, bad id, no device on the socket) and emud not
   running: virsh start fails with emud's one line; nothing is left running. A QEMU that
   fails after prepare: the stopped/release hooks take its emulator down.
3. SIGKILL of the emulator: emud restarts it, QEMU reconnects, the guest keeps reading.
4. SIGKILL of emud, then a new emud: it finds the domain and adopts the emulator (same pid);
   the emulator of a domain destroyed while emud was down is stopped; one prepared for a
   domain that libvirt is still starting (held at a second hook) is kept, then plugged.
5. emuctl spawn on the running domain: libvirt attaches the disk, the guest reads it; emuctl kill
   detaches it (gone from virsh dumpxml once libvirt's device-removed came).
6. libvirtd restarted while the domain runs: emud reconnects and still hears device-removed.
Also: emud-libvirt(7)'s example domain starts as printed; a device detached with virsh stops
its emulator; emuctl kill of a declared disk detaches
it, and new metadata (virsh metadata) brings it back."""

import json
import os
import re
import secrets
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402
import emudtest_libvirt as lvt  # noqa: E402

HOOK = Path(os.environ.get("EMUD_HOOK_BIN") or
            Path(t.emud_bin()).resolve().parent.parent / "hooks" / "emud-libvirt-hook")


def status(emud, eid):
    return json.loads(emud.emuctl("--json", "status", eid, check=True).stdout)


def listed(emud):
    return json.loads(emud.emuctl("--json", "list", check=True).stdout)


def guest_reads(con, dev, pattern):
    rc, got = con.run(f"echo 3 > /proc/sys/vm/drop_caches; head -c {len(pattern)} {dev}")
    assert rc == 0 and pattern.decode() in got, (rc, got)


def emulator_cgroups(domain):
    found = []
    for root, dirs, _files in os.walk("/sys/fs/cgroup"):
        found += [d for d in dirs if d.startswith(f"emud-{domain}.")]
    return found


def start_fails(lv, wd, name, meta, devices, needle):
    """virsh create of a domain whose start emud refuses: its line is in virsh's error."""
    xml = wd / f"{name}.xml"
    (wd / name).mkdir(exist_ok=True)
    xml.write_text(lvt.domain_xml(name, wd / name, devices, meta))
    r = lv.virsh("create", xml, check=False)
    assert r.returncode != 0, r
    assert needle in r.stderr, r.stderr
    line = [ln for ln in r.stderr.splitlines() if "emud:" in ln]
    assert line, r.stderr
    assert name not in lv.virsh("list", "--all", "--name").stdout
    return line[0]


def test(steps):
    if not HOOK.exists():
        t.skip(f"the hook binary {HOOK} is not built")
    with t.Workdir() as wd:
        os.chmod(wd.path, 0o711)     # QEMU runs as libvirt-qemu and must reach the sockets
        # A second hook, after emud's: it holds emudt-slow's start while DIR/hold exists.
        hold = (f"#!/bin/sh\n[ \"$1\" = emudt-slow ] && [ \"$2\" = start ] || exit 0\n"
                f"touch {wd / 'held'}\ni=0\n"
                f"while [ -e {wd / 'hold'} ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done\n")
        with lvt.SystemBus(wd), lvt.Libvirt(wd, HOOK, extra_hooks={"60-emudt-hold": hold}) as lv:
            run(steps, wd, lv)


def run(steps, wd, lv):
    runtime = wd / "run"
    emud = t.Emud(wd, None)
    name = "emudt-vm1"
    pattern = b"EMUD-LIBVIRT-" + secrets.token_hex(8).encode()
    img = t.image(wd / "disk0.img", 16 << 20, pattern)

    with steps.step("bad metadata: virsh start fails with emud's one line, nothing runs"):
        disk = lvt.vhostuser_disk(runtime / "vm" / "emudt-bad" / "disk0.vu.sock", "vda")
        start_fails(lv, wd, "emudt-bad",
                    lvt.metadata(("no-such-kind", "disk0", {"image": img})), disk,
                    "unknown emulator kind 'no-such-kind'")
        start_fails(lv, wd, "emudt-bad",
                    lvt.metadata(("vhost-user-blk", "disk0", {"image": wd / "missing.img"})), disk,
                    "missing.img")
        start_fails(lv, wd, "emudt-bad", lvt.metadata(("vhost-user-blk", "../x", {"image": img})),
                    disk, "invalid emulator id '../x'")
        line = start_fails(lv, wd, "emudt-bad",
                           lvt.metadata(("vhost-user-blk", "disk0", {"image": img})), "",
                           "has no device on its socket")
        assert "<disk type='vhostuser'" in line, line
        assert listed(emud) == [], listed(emud)
        assert t.qsd_pids(wd) == []
        assert not (runtime / "vm" / "emudt-bad").exists()

    with steps.step("QEMU fails to start after prepare: stopped/release take the emulator down"):
        fname = "emudt-qfail"

        def bad_qemu_arg(text):
            # An argument QEMU rejects: it exits right after libvirt launched it.
            text = text.replace("<domain type='qemu'>", "<domain type='qemu' xmlns:qemu="
                                "'http://libvirt.org/schemas/domain/qemu/1.0'>")
            return text.replace("</domain>", "<qemu:commandline><qemu:arg "
                                "value='-no-such-opt'/></qemu:commandline></domain>")
        fxml, _ = lvt.declared_domain(wd, fname, "disk0", {"image": img}, bad_qemu_arg)
        r = lv.virsh("create", fxml, check=False)
        assert r.returncode != 0 and "no-such-opt" in r.stderr, r
        t.poll_until(lambda: listed(emud) == [], 30, "the prepared emulator gone")
        assert t.qsd_pids(wd) == []
        assert not (runtime / "vm" / fname).exists()

    with steps.step("emud-libvirt(7)'s example domain, as printed, defines and starts"):
        ename = "emudt-man"
        (wd / f"{ename}.xml").write_text(man_example(img, runtime, ename))
        lv.virsh("define", wd / f"{ename}.xml")
        try:
            lv.virsh("start", ename)
            st = status(emud, "disk0")
            assert st["State"] == "plugged" and st["VM"] == ename, st
            lv.virsh("destroy", ename)
            t.poll_until(lambda: listed(emud) == [], 30, "the example's emulator gone")
        finally:
            lv.virsh("destroy", ename, check=False)
            lv.virsh("undefine", ename, check=False)

    xml, sock = lvt.declared_domain(wd, name, "disk0", {"image": img})
    lv.virsh("define", xml)
    con = lvt.start_domain(lv, name, wd / name)
    try:
        with steps.step("virsh start: the declared emulator serves the guest's disk"):
            st = status(emud, "disk0")
            assert st["State"] == "plugged" and st["VM"] == name, st
            assert os.stat(sock).st_uid == lvt.qemu_uid(), "QEMU's uid does not own the socket"
            con.wait_ready()
            guest_reads(con, "/dev/vda", pattern)

        with steps.step("SIGKILL of the emulator: restarted, the guest keeps reading"):
            old = status(emud, "disk0")
            os.kill(old["Pid"], signal.SIGKILL)
            t.poll_until(lambda: status(emud, "disk0")["Restarts"] == 1, 30, "a restart")
            st = status(emud, "disk0")
            assert st["State"] == "plugged" and st["Pid"] != old["Pid"], st
            guest_reads(con, "/dev/vda", pattern)

        pattern2 = b"EMUD-HOT-" + secrets.token_hex(8).encode()
        img2 = t.image(wd / "hot.img", 16 << 20, pattern2)

        def spawn_and_kill(eid):
            emud.emuctl("spawn", name, "vhost-user-blk", eid, f"image={img2}", check=True)
            dump = lv.virsh("dumpxml", name).stdout
            assert f"ua-emud-{eid}" in dump, dump
            st = status(emud, eid)
            assert st["State"] == "plugged" and st["RestartPolicy"] == "no", st
            dev = t.poll_until(lambda: find_disk(con, pattern2), 30, "the hot-plugged disk")
            guest_reads(con, dev, pattern2)
            emud.emuctl("kill", eid, check=True)
            assert f"ua-emud-{eid}" not in lv.virsh("dumpxml", name).stdout
            assert eid not in [e["id"] for e in listed(emud)]

        with steps.step("emuctl spawn goes through libvirt; kill waits for device-removed"):
            r = emud.emuctl("spawn", name, "vhost-user-blk", "hot0", f"image={img2}",
                            "restart=on-failure", check=1)
            assert "declare it in the domain's emud metadata" in r.stderr, r.stderr
            spawn_and_kill("hot0")

        with steps.step("libvirtd restarts: emud reconnects and follows its events"):
            n = emud.log().count("connected to libvirt at")
            lv.restart_libvirtd()
            t.poll_until(lambda: emud.log().count("connected to libvirt at") > n, 60,
                         "emud reconnecting to libvirtd")
            spawn_and_kill("hot1")
            guest_reads(con, "/dev/vda", pattern)

        with steps.step("virsh detach-device outside emud: the emulator stops"):
            emud.emuctl("spawn", name, "vhost-user-blk", "hot2", f"image={img2}",
                        "readonly=on", check=True)
            pid = status(emud, "hot2")["Pid"]
            lv.virsh("detach-device-alias", name, "ua-emud-hot2", "--live")
            t.poll_until(lambda: "hot2" not in [e["id"] for e in listed(emud)], 30,
                         "hot2 gone after libvirt's device-removed")
            assert t.wait_gone(pid, 10)

        # A second domain, destroyed while emud is down.
        other = "emudt-vm2"
        oxml, _ = lvt.declared_domain(wd, other, "b0", {"image": img2, "readonly": "on"})
        lv.virsh("create", oxml)
        other_pid = status(emud, "b0")["Pid"]

        with steps.step("SIGKILL of emud: a new emud adopts the emulator of the running domain, "
                        "and stops the one of a domain destroyed meanwhile"):
            before = status(emud, "disk0")
            emud.kill()
            r = start_fails_quiet(lv, wd, img)
            assert "emud is not running" in r, r
            # A domain without emud's metadata is none of emud's business: it starts anyway.
            (wd / "emudt-plain").mkdir()
            (wd / "emudt-plain.xml").write_text(lvt.domain_xml("emudt-plain",
                                                               wd / "emudt-plain"))
            lv.virsh("create", wd / "emudt-plain.xml")
            lv.virsh("destroy", "emudt-plain")
            lv.virsh("destroy", other)
            assert t.proc_state(other_pid) not in (None, "Z"), "b0 died with emud"
            emud = t.Emud(wd, None)
            t.poll_until(lambda: status(emud, "disk0")["State"] == "plugged", 60,
                         "disk0 adopted")
            st = status(emud, "disk0")
            assert st["Pid"] == before["Pid"], (st, before)
            t.poll_until(lambda: "b0" not in [e["id"] for e in listed(emud)], 30,
                         "b0 stopped")
            assert t.wait_gone(other_pid, 10), "the emulator of the destroyed domain runs on"
            assert other not in emud.emuctl("vm-list", check=True).stdout
            guest_reads(con, "/dev/vda", pattern)

        with steps.step("emud restarted while libvirt is still starting a domain: the new emud "
                        "keeps its prepared emulator, which is plugged once QEMU runs"):
            sname = "emudt-slow"
            sxml, _ = lvt.declared_domain(wd, sname, "s0", {"image": img2, "readonly": "on"})
            (wd / "hold").touch()
            starter = subprocess.Popen(["virsh", "-c", "qemu:///system", "create",
                                        str(sxml)], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True)
            try:
                t.poll_until(lambda: (wd / "held").exists(), 30, "the start held at its hook")
                before = status(emud, "s0")
                assert before["State"] == "prepared", before
                emud.kill()
                emud = t.Emud(wd, None)
                # libvirt answers nothing about the domain while its hook runs: the new
                # emud has adopted s0 and waits to learn what the domain does.
                st = status(emud, "s0")
                assert st["State"] in ("adopting", "prepared"), st
                assert st["Pid"] == before["Pid"], st
            finally:
                (wd / "hold").unlink()
                out, err = starter.communicate(timeout=60)
            assert starter.returncode == 0, err
            t.poll_until(lambda: status(emud, "s0")["State"] == "plugged", 30, "s0 plugged")
            st = status(emud, "s0")
            assert st["Device"].startswith("virtio-disk") and st["Pid"] == before["Pid"], st
            lv.virsh("destroy", sname)
            t.poll_until(lambda: "s0" not in [e["id"] for e in listed(emud)], 30, "s0 gone")

        with steps.step("emuctl kill of the declared disk: libvirt detaches it"):
            pid = status(emud, "disk0")["Pid"]
            emud.emuctl("kill", "disk0", check=True)
            assert "disk0.vu.sock" not in lv.virsh("dumpxml", name).stdout
            assert t.wait_gone(pid, 10)
            rc, out = con.run("ls /dev")
            assert "vda" not in out.split(), out
            # It comes back when the metadata is read again: emud re-reads it on a change.
            # virsh puts every element of the fragment into the namespace it is given.
            plain = lvt.metadata(("vhost-user-blk", "disk0", {"image": img}))
            plain = plain.replace(f" xmlns:emud='{lvt.NS}'", "").replace("emud:", "")
            lv.virsh("metadata", name, lvt.NS, "--key", "emud", "--set", plain, "--live")
            t.poll_until(lambda: "disk0" in [e["id"] for e in listed(emud)] and
                         status(emud, "disk0")["State"] == "plugged", 30, "disk0 back")
            st = status(emud, "disk0")
            assert st["RestartPolicy"] == "no", st   # hot-plugged by libvirt: no reconnect
            dev = t.poll_until(lambda: find_disk(con, pattern), 30, "disk0 in the guest")
            guest_reads(con, dev, pattern)

        with steps.step("virsh destroy: no emulator, socket, cgroup or VM left"):
            pid = status(emud, "disk0")["Pid"]
            lv.virsh("destroy", name)
            try:
                t.poll_until(lambda: listed(emud) == [], 30, "the emulators gone")
            except TimeoutError as e:
                raise AssertionError(f"{e}: still listed: {listed(emud)}") from None
            assert t.wait_gone(pid, 10), "qsd still runs"
            t.poll_until(lambda: name not in emud.emuctl("vm-list", check=True).stdout, 10,
                         "the VM gone")
            assert not sock.exists() and not (runtime / "vm" / name).exists()
            assert emulator_cgroups(name) == [], emulator_cgroups(name)
            assert t.qsd_pids(wd) == []
    finally:
        con.stop()
        lv.virsh("destroy", name, check=False)
        lv.virsh("undefine", name, check=False)
        emud.stop()
    assert "ERROR" not in emud.log() and "CRITICAL" not in emud.log(), emud.log()


def man_example(img, runtime, name):
    """The complete domain of emud-libvirt(7)'s EXAMPLES, with this machine's paths."""
    text = (t.REPO / "man" / "emud-libvirt.7").read_text()
    block = text.split(".SH EXAMPLES", 1)[1].split(".EX\n", 1)[1].split(".EE", 1)[0]
    xml = block.replace("\\-", "-").replace("\\e", "\\")
    kernel, initrd = t._guest_files()
    for old, new in (("/srv/vm1/vmlinuz", kernel), ("/srv/vm1/initrd.img", initrd),
                     ("/srv/vm1/data.raw", img), ("/run/emud/", f"{runtime}/"),
                     ("<name>vm1</name>", f"<name>{name}</name>"), ("/vm/vm1/", f"/vm/{name}/")):
        assert old in xml, f"the man page's example has no {old}"
        xml = xml.replace(old, str(new))
    return xml


def start_fails_quiet(lv, wd, img):
    """With emud down, a domain with emud metadata does not start; returns the hook's line."""
    name = "emudt-down"
    sock = wd / "run" / "vm" / name / "disk0.vu.sock"
    return start_fails(lv, wd, name, lvt.metadata(("vhost-user-blk", "disk0", {"image": img})),
                       lvt.vhostuser_disk(sock, "vda"), "emud")


def find_disk(con, pattern):
    """The guest's /dev/vdX that starts with pattern, or None."""
    rc, out = con.run("ls /dev")
    for dev in sorted(set(re.findall(r"\bvd[a-z]\b", out))):
        rc, got = con.run(f"head -c {len(pattern)} /dev/{dev}")
        if rc == 0 and pattern.decode() in got:
            return f"/dev/{dev}"
    return None


t.main(test, needs=("qemu-system-x86_64", "virsh", "libvirtd", "virtlogd", "dbus-daemon"))
