#!/usr/bin/env python3
"""bash completion of emuctl (cli/emuctl.bash-completion), driven the way bash drives it:
`complete -p emuctl` names the function, which is called with COMP_WORDS and COMP_CWORD set,
and COMPREPLY holds the candidates.

Commands and options complete without emud; VM names, emulator ids and kinds come from a
running emud (a defined VM with a prepared emulator: no QEMU needed), and with emud gone there
are none, with nothing on stderr."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import emudtest as t  # noqa: E402

SCRIPT = t.REPO / "cli" / "emuctl.bash-completion"
BASH_COMPLETION = Path("/usr/share/bash-completion/bash_completion")


def complete(bus, *words):
    """Candidates for the command line `words` (the last one being completed)."""
    line = " ".join(f"'{w}'" for w in words)
    script = f"""
source {BASH_COMPLETION}
source {SCRIPT}
complete -p emuctl
COMP_WORDS=({line})
COMP_CWORD={len(words) - 1}
COMP_LINE="${{COMP_WORDS[*]}}"
COMP_POINT=${{#COMP_LINE}}
_emuctl emuctl "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf 'C:%s\\n' "${{COMPREPLY[@]}}"
"""
    env = {"PATH": f"{Path(t.emuctl_bin()).resolve().parent}:/usr/bin:/bin"}
    if bus is not None:
        env["DBUS_SESSION_BUS_ADDRESS"] = bus.address
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    assert r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "complete -F _emuctl emuctl", lines
    return sorted(ln[2:] for ln in lines[1:] if ln.startswith("C:") and ln != "C:")


def test(steps):
    if not BASH_COMPLETION.exists():
        t.skip(f"{BASH_COMPLETION} is missing (package bash-completion)")
    with t.Workdir() as wd, t.Bus(wd) as bus:
        with steps.step("commands and options, without emud"):
            assert complete(bus, "emuctl", "--user", "sp") == ["spawn"]
            assert "vm-list" in complete(bus, "emuctl", "")
            assert complete(bus, "emuctl", "--j") == ["--json"]
            assert complete(bus, "emuctl", "--user", "spawn", "--restart=on") == ["on-failure"]
            assert complete(bus, "emuctl", "--user", "shutdown", "--") == ["--stop-emulators"]
            # No emud: no ids, and not a word on stderr (complete() checks).
            assert complete(bus, "emuctl", "--user", "kill", "") == []
            assert complete(bus, "emuctl", "--user", "spawn", "") == []

        img = t.image(wd / "d.img", 1 << 20)
        with t.Emud(wd, bus) as emud:
            emud.emuctl("prepare", "vm-one", "vhost-user-blk", "disk-a", f"image={img}",
                        "readonly=on", check=True)
            emud.emuctl("prepare", "vm-one", "vhost-user-blk", "disk-b", f"image={img}",
                        "readonly=on", check=True)
            with steps.step("ids, VM names and kinds from the running emud"):
                assert complete(bus, "emuctl", "--user", "kill", "") == ["disk-a", "disk-b"]
                assert complete(bus, "emuctl", "--user", "status", "disk-b") == ["disk-b"]
                assert complete(bus, "emuctl", "--user", "policy", "dump", "d") == \
                    ["disk-a", "disk-b"]
                assert complete(bus, "emuctl", "--user", "events", "") == ["vm-one"]
                assert complete(bus, "emuctl", "--user", "spawn", "--seccomp=log", "vm") == \
                    ["vm-one"]
                kinds = complete(bus, "emuctl", "--user", "spawn", "vm-one", "")
                assert "vhost-user-blk" in kinds and "vhost-user-fs" in kinds, kinds
                assert complete(bus, "emuctl", "--user", "prepare", "--qmp", "/x", "vm-one",
                                "vhost-user-b") == ["vhost-user-blk"]
                # The third word of spawn is a new id: nothing to offer.
                assert complete(bus, "emuctl", "--user", "spawn", "vm-one", "vhost-user-blk",
                                "") == []
            with steps.step("without --user, the system bus: no emud there, nothing"):
                assert complete(bus, "emuctl", "kill", "") == []
            emud.emuctl("vm-remove", "vm-one", check=True)

        with steps.step("emud gone: nothing, quietly"):
            assert complete(bus, "emuctl", "--user", "kill", "") == []


t.main(test, needs=("bash",), guest=False)
