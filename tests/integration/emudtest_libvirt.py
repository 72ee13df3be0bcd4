"""Fixture for tests that drive emud through a real libvirtd (standard library only).

    import emudtest as t
    import emudtest_libvirt as lvt

    with t.Workdir() as wd, lvt.SystemBus(wd) as bus, lvt.Libvirt(wd, hook) as lv:
        (wd / "d.xml").write_text(lvt.domain_xml("emudt-a", wd))
        with lvt.start_domain(lv, wd / "d.xml", wd) as con:
            con.wait_ready()
            assert con.run("true")[0] == 0

SystemBus  a dbus-daemon on the system bus socket with emud's policy (none runs here);
Libvirt    virtlogd and libvirtd with the hook installed, and everything put back afterwards
           (nest it inside SystemBus: a libvirtd exits when the bus it is connected to stops);
Console    the guest's serial console, with emudtest.VM's protocol (wait_ready, run).

Domains of tests are named emudt-*: Libvirt destroys and undefines whatever is left of them.
Made for a fresh test machine, run as root. Left in place on purpose: the groups kvm and
libvirt-qemu and the user libvirt-qemu when they had to be created, /var/log/libvirt, and
libvirt's own state and caches under /var and /run.
"""

import contextlib
import glob
import grp
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import emudtest
from emudtest import REPO, Skip, poll_until, proc_state, try_connect

NS = "https://emud.org/xmlns/libvirt/1"     # emud's metadata, emud-libvirt(7)
SYSTEM_BUS_SOCKET = Path("/run/dbus/system_bus_socket")
HOOK_DIR = Path("/etc/libvirt/hooks")
HOOK = HOOK_DIR / "qemu.d" / "50-emud"
HOOK_SAVED = HOOK_DIR / "50-emud.emudtest-saved"   # not a hook name libvirt runs
PREFIX = "emudt-"
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _alive(pid):
    return proc_state(pid) not in (None, "Z")    # a zombie has exited: nobody reaps it here


def _pids(comm=None, cmdline=None):
    """Live processes named comm (as pgrep -x), or else whose command line contains cmdline."""
    out = []
    for d in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if comm:
                hit = Path(f"/proc/{d}/comm").read_text().strip() == comm
            else:
                hit = cmdline.encode() in Path(f"/proc/{d}/cmdline").read_bytes()
            if hit and _alive(int(d)):
                out.append(int(d))
    return sorted(out)


def _test_qemus():
    return _pids(cmdline=f"guest={PREFIX}")     # QEMU's -name guest=NAME,...


def _start_epoch(pid):
    """When pid started, in seconds since the epoch (to within a second: btime is whole
    seconds; exact between two processes)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    btime = next(int(line.split()[1]) for line in open("/proc/stat")
                 if line.startswith("btime "))
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def _answers(path):
    """Whether a unix stream socket at path accepts a connection."""
    s = try_connect(path)
    if s is not None:
        s.close()
    return s is not None


def _reset_dac(paths):
    """Give files the owner libvirt's DAC driver remembered for them, and drop its xattrs. A
    domain that was not stopped through libvirt leaves them chowned to libvirt-qemu, with a
    reference count that keeps later domains from ever giving them back."""
    for p in paths:
        with contextlib.suppress(OSError):
            uid, gid = os.getxattr(p, "trusted.libvirt.security.dac").decode().split(":")
            os.chown(p, int(uid.lstrip("+")), int(gid.lstrip("+")))
            for a in ("dac", "ref_dac", "timestamp_dac"):
                os.removexattr(p, f"trusted.libvirt.security.{a}")


def _wait_exited(pid, timeout):
    with contextlib.suppress(TimeoutError):
        return poll_until(lambda: not _alive(pid), timeout, f"pid {pid} to exit", interval=0.05)


def _terminate(pid, timeout=30, sig=signal.SIGTERM):
    """Send sig (SIGKILL if pid is still there after timeout); wait until it has exited."""
    for s in (sig, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, s)
        if _wait_exited(pid, timeout):
            return


# ---------------------------------------------------------------------------------------------
# System bus


def _system_bus_conf(source="/usr/share/dbus-1/system.conf"):
    """system.conf's policies (the default one; root may monitor) without its user switch,
    pid file, activation and system.d includes, plus emud's policy."""
    text = Path(source).read_text()
    policies = re.findall(r'<policy (?:context="default"|user="root")>.*?</policy>', text, re.S)
    return "\n".join([
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"",
        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">', "<busconfig>",
        "<type>system</type>", "<auth>EXTERNAL</auth>",
        f"<listen>unix:path={SYSTEM_BUS_SOCKET}</listen>", *policies,
        f"<include>{REPO / 'systemd' / 'org.emud.Manager1.conf'}</include>", "</busconfig>", ""])


class SystemBus:
    """A dbus-daemon as the system bus (/run/dbus/system_bus_socket), run as root with the
    policies of system.conf plus the project's systemd/org.emud.Manager1.conf, so that emud
    (root) can own its name and libvirt's hook (root, default bus address) can reach it.
    Ready once the socket accepts. Config and log: DIR/system-bus.conf, DIR/system-bus.log.

    Raises Skip when a system bus already answers there: its policy is not emud's.
    A libvirtd connected to this bus exits when it stops (GDBus exit-on-close): nest Libvirt
    inside; a libvirtd that ran before the bus started and died with it is started again."""

    address = f"unix:path={SYSTEM_BUS_SOCKET}"

    def __init__(self, workdir, timeout=10):
        d = Path(str(workdir))
        if _answers(SYSTEM_BUS_SOCKET):
            raise Skip(f"a system bus already runs on {SYSTEM_BUS_SOCKET}; this test needs its "
                       "own with emud's policy")
        self._libvirtd_before = bool(_pids("libvirtd"))
        self._made_dir = not SYSTEM_BUS_SOCKET.parent.exists()
        SYSTEM_BUS_SOCKET.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            SYSTEM_BUS_SOCKET.unlink()             # stale: nothing listens on it
        conf = d / "system-bus.conf"
        conf.write_text(_system_bus_conf())
        self.log = d / "system-bus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=_ENV)

        def alive():
            if self.proc.poll() is not None:
                raise RuntimeError(f"system dbus-daemon exited with {self.proc.returncode}:\n"
                                   f"{self.log.read_text(errors='replace')}")
        try:
            poll_until(lambda: _answers(SYSTEM_BUS_SOCKET), timeout, "the system bus socket",
                       alive=alive)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        """Stop dbus-daemon, remove its socket; see the class doc for libvirtd."""
        doomed = []
        with contextlib.suppress(OSError):    # started after the bus: connected to it
            mine = _start_epoch(self.proc.pid)
            doomed = [p for p in _pids("libvirtd") if _start_epoch(p) > mine]
        rc = emudtest.stop_process(self.proc)
        with contextlib.suppress(FileNotFoundError):
            SYSTEM_BUS_SOCKET.unlink()
        if self._made_dir:
            with contextlib.suppress(OSError):
                SYSTEM_BUS_SOCKET.parent.rmdir()
        for pid in doomed:
            _wait_exited(pid, 30)
        if self._libvirtd_before and doomed and not _pids("libvirtd"):
            subprocess.run(["libvirtd", "-d"], stdin=subprocess.DEVNULL, env=_ENV, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        return rc

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------
# libvirtd


def qemu_uid():
    """The uid libvirt runs QEMU as (user libvirt-qemu)."""
    return pwd.getpwnam("libvirt-qemu").pw_uid


def _ensure_users():
    """libvirt's default user and group for QEMU, libvirt-qemu (in group kvm): the packages
    do not create them."""
    for get, argv in ((grp.getgrnam, ["groupadd", "-r", "kvm"]),
                      (grp.getgrnam, ["groupadd", "-r", "libvirt-qemu"]),
                      (pwd.getpwnam, ["useradd", "-r", "-g", "libvirt-qemu", "-G", "kvm", "-d",
                                      "/var/lib/libvirt", "-s", "/usr/sbin/nologin",
                                      "libvirt-qemu"])):
        try:
            get(argv[-1])
        except KeyError:
            subprocess.run(argv, check=True)


def _hooks_active_since(t):
    """Whether libvirtd started at time t found a qemu hook (libvirt looks only at start)."""
    files = [HOOK_DIR / "qemu"] + sorted((HOOK_DIR / "qemu.d").glob("*"))
    return any(p.is_file() and os.access(p, os.X_OK) and p.stat().st_mtime < t for p in files)


class Libvirt:
    """virtlogd and libvirtd (system instance) with hook_binary installed as
    /etc/libvirt/hooks/qemu.d/50-emud, put in place before libvirtd starts (libvirt runs qemu.d
    hooks only if one was there at its start).

    Daemons already running are used; a libvirtd that started without any qemu hook is
    restarted (and one is left running at exit). On exit: emudt-* domains are destroyed and
    undefined, the daemons this started are stopped, their leftovers removed, the domains'
    QEMU logs moved into DIR, /etc/libvirt and /dev/kvm put back as they were found.
    /dev/kvm gets group kvm and 0660 meanwhile: left at root 0600, QEMU's probe as
    libvirt-qemu makes every domain start take about a minute."""

    def __init__(self, workdir, hook_binary, timeout=60, extra_hooks=None):
        """extra_hooks: {name: script text}, more qemu.d hooks for the test, removed at exit."""
        self.dir = Path(str(workdir))
        self.timeout = timeout
        self._undo = []      # callables, run in reverse order by stop()
        self._own = set()    # names of the daemons to stop at exit
        self.start_time = None    # seconds libvirtd took to answer, when started here
        try:
            self._setup(Path(str(hook_binary)), extra_hooks or {})
        except BaseException:
            self.stop()
            raise

    def _setup(self, hook_binary, extra_hooks):
        _ensure_users()
        Path("/var/log/libvirt").mkdir(parents=True, exist_ok=True)
        etc = {p for p, _, _ in os.walk("/etc/libvirt")}
        self._undo.append(lambda: self._tidy(etc))
        if not _test_qemus():
            _reset_dac(emudtest._guest_files())    # left so by an earlier run that failed
        if os.path.exists("/dev/kvm"):
            st = os.stat("/dev/kvm")
            kvm = grp.getgrnam("kvm").gr_gid
            if st.st_gid != kvm or st.st_mode & 0o060 != 0o060:
                self._undo.append(lambda: (os.chown("/dev/kvm", st.st_uid, st.st_gid),
                                           os.chmod("/dev/kvm", st.st_mode & 0o7777)))
                os.chown("/dev/kvm", -1, kvm)
                os.chmod("/dev/kvm", st.st_mode & 0o7777 | 0o060)
        running = _pids("libvirtd")
        restart = running and not _hooks_active_since(_start_epoch(running[0]))
        if HOOK.exists() and not HOOK_SAVED.exists():
            os.rename(HOOK, HOOK_SAVED)     # someone's own hook: back at exit
        self._undo.append(self._remove_hook)
        HOOK.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(hook_binary, HOOK)
        os.chmod(HOOK, 0o755)
        for name, text in extra_hooks.items():
            path = HOOK.parent / name
            path.write_text(text)
            os.chmod(path, 0o755)
            self._undo.append(lambda path=path: path.unlink(missing_ok=True))
        if not _pids("virtlogd"):
            self._daemon("virtlogd")
            poll_until(lambda: _answers("/run/libvirt/virtlogd-sock"), 10, "virtlogd's socket",
                       interval=0.05)
        if restart:
            self.restart_libvirtd()
        elif not running:
            t0 = time.monotonic()
            self._daemon("libvirtd")
            self.wait_up(self.timeout)
            self.start_time = time.monotonic() - t0
        self._undo.append(self._cleanup_domains)    # first thing at exit, libvirtd still up

    def _daemon(self, name, own=True):
        """Start `name -d` (it daemonizes itself); own=True: stop it at exit."""
        with open(self.dir / f"{name}.start.log", "ab") as log:
            subprocess.run([name, "-d"], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                           env=_ENV, check=True, timeout=60)
        if own and name not in self._own:
            self._own.add(name)
            self._undo.append(lambda: [_terminate(p) for p in _pids(name)])

    def virsh(self, *args, check=True, timeout=60):
        """Run `virsh -c qemu:///system ARGS`; check=True: exit 0 or AssertionError."""
        r = subprocess.run(["virsh", "-c", "qemu:///system", *map(str, args)],
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"virsh {' '.join(map(str, args))}: exit {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def wait_up(self, timeout=60):
        """Wait until libvirtd answers `virsh version`."""
        def alive():
            if not _pids("libvirtd"):
                raise RuntimeError("libvirtd is not running (see /var/log/libvirt/"
                                   f"libvirtd.log and {self.dir}/libvirtd.start.log)")
        poll_until(lambda: self.virsh("version", check=False, timeout=timeout).returncode == 0,
                   timeout, "libvirtd to answer", interval=0.1, alive=alive)

    def restart_libvirtd(self, timeout=60):
        """SIGTERM libvirtd, wait until it is gone, start it again and wait until it answers.
        Running domains stay up. Returns the seconds the new one took to answer."""
        for pid in _pids("libvirtd"):
            _terminate(pid)
        t0 = time.monotonic()
        self._daemon("libvirtd", own=False)    # whoever ran the old one owns the new one
        self.wait_up(timeout)
        return time.monotonic() - t0

    def domains(self):
        """Names of all defined or running domains."""
        return self.virsh("list", "--all", "--name").stdout.split()

    def _cleanup_domains(self):
        if _pids("libvirtd"):
            with contextlib.suppress(Exception):
                for name in self.domains():
                    if name.startswith(PREFIX):
                        self.virsh("destroy", name, check=False)
                        self.virsh("undefine", name, check=False)
        for pid in _test_qemus():     # what libvirt could not clean up
            _terminate(pid, 10, signal.SIGKILL)

    def _remove_hook(self):
        with contextlib.suppress(FileNotFoundError):
            HOOK.unlink()
        if HOOK_SAVED.exists():
            os.rename(HOOK_SAVED, HOOK)

    def _tidy(self, dirs_before):
        """After the daemons stopped: leftovers of emudt-* domains go; QEMU logs move to DIR;
        directories under /etc/libvirt that were not there before go if empty."""
        if not _test_qemus():
            _reset_dac(emudtest._guest_files())
        if "libvirtd" in self._own or not _pids("libvirtd"):
            for p in [f for d in ("/run/libvirt/qemu", "/var/lib/libvirt/qemu",
                                  "/etc/libvirt/qemu") for f in glob.glob(f"{d}/*{PREFIX}*")]:
                with contextlib.suppress(OSError):
                    if os.path.isdir(p):
                        shutil.rmtree(p)
                    else:
                        os.unlink(p)
        for log in glob.glob(f"/var/log/libvirt/qemu/{PREFIX}*.log"):
            with contextlib.suppress(OSError):
                shutil.move(log, self.dir / f"libvirt-{os.path.basename(log)}")
        for p, _, _ in sorted(os.walk("/etc/libvirt"), key=lambda e: -len(e[0])):
            if p not in dirs_before:
                with contextlib.suppress(OSError):
                    os.rmdir(p)

    def stop(self):
        """Undo everything, in reverse order; keeps going past failures and raises the first."""
        first = None
        while self._undo:
            try:
                self._undo.pop()()
            except Exception as e:
                first = first or e
        if first:
            raise first

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---------------------------------------------------------------------------------------------
# Domains and their console


def domain_xml(name, workdir, devices_xml="", metadata_xml="", memory_mib=256):
    """A TCG q35 domain booting the test guest, with four empty pcie-root-ports, shared memfd
    RAM (for vhost-user) and ttyS0 on DIR/serial.sock. Makes DIR reachable for libvirt-qemu
    (adds x for group and others to DIR and its parents below /tmp, e.g. a Workdir). Name
    test domains emudt-*, so that Libvirt cleans them up."""
    d = Path(str(workdir)).resolve()
    for p in [d, *d.parents]:
        if Path(tempfile.gettempdir()) in p.parents and not p.stat().st_mode & 0o001:
            os.chmod(p, p.stat().st_mode & 0o7777 | 0o011)
    kernel, initrd = emudtest._guest_files()
    ports = "".join(f"\n    <controller type='pci' index='{n}' model='pcie-root-port'/>"
                    for n in range(1, 5))
    meta = f"\n  <metadata>\n    {metadata_xml}\n  </metadata>" if metadata_xml else ""
    return f"""<domain type='qemu'>
  <name>{name}</name>{meta}
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <!-- Shared memory from a NUMA cell: with <access mode='shared'/> instead, libvirt 9.0
       refuses vhostuser hot-plugs after a libvirtd restart ("requires shared memory"). -->
  <cpu><numa><cell id='0' cpus='0' memory='{memory_mib}' unit='MiB' memAccess='shared'/>
  </numa></cpu>
  <memoryBacking><source type='memfd'/></memoryBacking>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <controller type='usb' model='none'/>
    <controller type='pci' index='0' model='pcie-root'/>{ports}
    <serial type='unix'>
      <source mode='bind' path='{d / "serial.sock"}'/><target port='0'/>
    </serial>
    <memballoon model='none'/>
    {devices_xml}
  </devices>
</domain>
"""


def metadata(*emulators):
    """emud's <emulators> element; each emulator is (kind, id, {option: value})."""
    out = [f"<emud:emulators xmlns:emud='{NS}'>"]
    for kind, eid, opts in emulators:
        out.append(f"<emud:emulator kind='{kind}' id='{eid}'>")
        out += [f"<emud:option name='{k}' value='{v}'/>" for k, v in opts.items()]
        out.append("</emud:emulator>")
    out.append("</emud:emulators>")
    return "".join(out)


def vhostuser_disk(sock, dev):
    return (f"<disk type='vhostuser' device='disk'><driver name='qemu' type='raw'/>"
            f"<source type='unix' path='{sock}'><reconnect enabled='yes' timeout='1'/>"
            f"</source><target dev='{dev}' bus='virtio'/></disk>")


def declared_domain(wd, name, eid, options, edit=lambda text: text, memory_mib=256):
    """DIR/NAME.xml: a domain declaring vhost-user-blk emulator eid (with options), and the
    vhostuser disk on its socket. edit(text) may change the XML first. Returns (xml path,
    the emulator's socket)."""
    sock = wd / "run" / "vm" / name / f"{eid}.vu.sock"
    (wd / name).mkdir(exist_ok=True)
    xml = wd / f"{name}.xml"
    xml.write_text(edit(domain_xml(name, wd / name, vhostuser_disk(sock, "vda"),
                                   metadata(("vhost-user-blk", eid, options)), memory_mib)))
    return xml, sock


class _DomainQemu:
    """Stands in for VM.proc: the domain's QEMU, by the pid libvirt recorded."""

    returncode = None

    def __init__(self, name):
        self.pid = int(Path(f"/run/libvirt/qemu/{name}.pid").read_text().strip())

    def poll(self):
        if not _alive(self.pid):
            self.returncode = "unknown (not our child)"
        return self.returncode


class Console(emudtest.VM):
    """The serial console of domain `name` (ttyS0 on DIR/serial.sock), read by a thread into
    memory and DIR/serial.log: wait_ready(), run(cmd) and serial_text() are emudtest.VM's.
    Closing it leaves the domain running. t_start: when the domain was started, for
    wait_ready()'s return value. VM.__init__ is not run: this sets up the attributes that
    VM's reader and run() use, with .proc standing for the domain's QEMU."""

    def __init__(self, workdir, name, timeout=30, t_start=None, path=None):
        self.dir = Path(str(workdir))
        self.name = name
        self.serial_path = Path(path) if path else self.dir / "serial.sock"
        self._out = bytearray()
        self._cond = threading.Condition()
        self._serial_eof = False
        self._seq = 0
        self._thread = None
        self.qmp = None
        self.ready_time = None
        self.t_start = t_start if t_start is not None else time.monotonic()
        self.proc = _DomainQemu(name)
        self._serial = poll_until(lambda: try_connect(self.serial_path), timeout,
                                  f"{self.serial_path}", alive=self._check_alive)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()

    def qemu_log(self):
        with contextlib.suppress(OSError):
            return Path(f"/var/log/libvirt/qemu/{self.name}.log").read_text(errors="replace")
        return ""

    def stop(self, timeout=5):
        """Close the console (the domain keeps running). Safe to call twice."""
        if self._serial is not None and self._serial.fileno() >= 0:
            with contextlib.suppress(OSError):
                self._serial.shutdown(socket.SHUT_RDWR)
            self._serial.close()
        if self._thread is not None:
            self._thread.join(timeout)

    close = stop


def start_domain(lv, domain, workdir, define=False, timeout=30):
    """Start a domain paused, connect its console, resume it; returns the Console.

    domain: a domain name (defined already), a path to domain XML or the XML text itself
    (written to DIR/NAME.xml). With XML, define=True defines it (then starts it), else it is
    created transient."""
    d = Path(str(workdir))
    text = str(domain)
    if text.lstrip().startswith("<"):
        name = ET.fromstring(text).findtext("name")
        path = d / f"{name}.xml"
        path.write_text(text)
    elif os.path.isfile(text):
        path, name = Path(text), ET.parse(text).findtext("name")
    else:
        path, name = None, text
    t0 = time.monotonic()
    if path is None or define:
        if path is not None:
            lv.virsh("define", path)
        lv.virsh("start", name, "--paused")
    else:
        lv.virsh("create", path, "--paused")
    con = Console(d, name, timeout=timeout, t_start=t0)
    try:
        lv.virsh("resume", name)
    except BaseException:
        con.close()
        raise
    return con
