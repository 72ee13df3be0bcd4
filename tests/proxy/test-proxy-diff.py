#!/usr/bin/env python3
"""Differential test: one QMP script against QEMU directly and against an identical QEMU
through the proxy; every reply and event must match, timestamps aside."""

import json

import proxytest as t

# Messages in order; each entry's replies and events are compared. A (bytes, n) entry is
# sent as it is and answered n times: QMP input is JSON values, not lines.
SCRIPT = [
    {"execute": "query-status", "id": 1},                       # before negotiation
    {"execute": "qmp_capabilities", "arguments": {"enable": ["bogus"]}, "id": "bad-cap"},
    {"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}, "id": "neg"},
    {"execute": "query-status", "id": 2},
    {"execute": "query-pci", "id": {"a": [1, None, "x"]}},      # any JSON value as id
    {"execute": "qom-list", "arguments": {"path": "/machine"}, "id": 3.5},
    {"execute": "query-version", "id": "v"},
    {"execute": "no-such-command", "id": 4},                     # error cases
    {"id": "noexec"},
    [1, 2],
    {"execute": 7, "id": "int-exec"},
    {"execute": "query-status", "arguments": {"x": 1}, "id": 5},
    {"execute": "query-status", "arguments": [], "id": 6},
    {"execute": "query-status", "foo": 1, "id": 7},
    {"execute": "query-status", "exec-oob": "query-status", "id": 8},
    {"execute": "qmp_capabilities", "id": 9},                    # negotiation is over
    {"exec-oob": "migrate-pause", "id": "oob1"},
    {"exec-oob": "query-status", "id": "oob2"},
    {"execute": "closefd", "arguments": {"fdname": "nope"}, "id": 10},
    {"execute": "chardev-add", "arguments": {"id": "c0", "backend": {"type": "null",
                                                                      "data": {}}}, "id": 11},
    {"execute": "query-chardev", "id": 12},
    {"execute": "chardev-remove", "arguments": {"id": "c0"}, "id": 13},
    {"execute": "chardev-remove", "arguments": {"id": "c0"}, "id": 14},
    {"execute": "device_add", "arguments": {"driver": "virtio-rng-pci", "id": "rng0",
                                            "bus": "rp1"}, "id": 15},
    {"execute": "qom-list", "arguments": {"path": "/machine/peripheral"}, "id": 16},
    {"execute": "device_add", "arguments": {"driver": "no-such-device", "id": "x"}, "id": 17},
    {"execute": "cont", "id": 18},
    {"execute": "stop", "id": 19},
    {"execute": "cont", "id": 20},
    {"execute": "query-status", "id": 21},
    (b'{"execute": "query-name", "id": "a"}{"execute": "query-uuid", "id": "b"}\n', 2),
    (b'{\n  "execute": "query-status",\n  "id": [\n    "pretty"\n  ]\n}\n', 1),
    (b'{"execute": "query-name", "id": "split', 0),
    (b'-word"}\n', 1),
    {"execute": "stop"},                                         # no id at all
]


def normalised(msgs, qemu):
    """QEMU's socket paths differ between the two machines; nothing else may."""
    text = json.dumps(msgs).replace(str(qemu.qmp.parent / qemu.name), "QEMU")
    return json.loads(text)


def run(path, qemu):
    c = t.Raw(path)
    transcript = [("greeting", c.greeting)]
    for msg in SCRIPT:
        data, replies = msg if isinstance(msg, tuple) else (msg, 1)
        c.send(data)
        got = []
        while replies:
            m = c.recv()
            got.append(m)
            replies -= "event" not in m
        transcript.append((data, normalised(t.strip_timestamps(got), qemu)))
    commands = c.ok("query-commands", id="qc")
    c.close()
    return transcript, commands


def test(d):
    direct_qemu = t.Qemu(d, "direct")
    proxied_qemu = t.Qemu(d, "proxied")
    proxyd = t.Proxyd(d, proxied_qemu.qmp)
    try:
        direct, direct_cmds = run(direct_qemu.qmp, direct_qemu)
        proxied, proxied_cmds = run(proxyd.path, proxied_qemu)
        for (msg, a), (_, b) in zip(direct, proxied):
            assert a == b, f"differs for {msg}:\n direct:  {a}\n proxied: {b}"
        assert len(direct) == len(proxied)
        names = {c["name"] for c in proxied_cmds}
        ours = {n for n in names if n.startswith("__org.emud_")}
        assert {"__org.emud_query-emulators", "__org.emud_emulator-execute"} <= ours, ours
        assert names - ours == {c["name"] for c in direct_cmds}, "query-commands differ"
        print(f"{len(SCRIPT)} script steps and query-commands ({len(names)} names) match")
    finally:
        proxyd.stop()
        proxied_qemu.stop()
        direct_qemu.stop()


t.main(test)
