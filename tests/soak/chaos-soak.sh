#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Soak: the chaos driver (tests/chaos/chaos.py) over many seeds, TOTAL steps in all (default
# 600), STEPS per seed (default 60), from seed FIRST on (default: a random one, printed), then a
# summary: steps run, failures by kind, and the command that replays each failure. Not part of
# `meson test`; run by hand after building, as root:
#
#   tests/soak/chaos-soak.sh [TOTAL [STEPS [FIRST]]]
#
# EMUD_BIN, EMUCTL_BIN and EMUD_GUEST_DIR choose the binaries and the test guest as for the
# integration tests (default: build/). CHAOS_IDS=a,b,c replaces the emulator id pool.
# Exit 0 if no seed failed, 1 otherwise, 77 if the driver cannot run here.
set -uo pipefail
cd "$(dirname "$0")/../.."

total=${1:-600}
per=${2:-60}
first=${3:-$(( (RANDOM << 15 | RANDOM) % 1000000 ))}
nseeds=$(( (total + per - 1) / per ))
seeds=$(seq -s, "$first" $(( first + nseeds - 1 )))
log=$(mktemp /tmp/chaos-soak.XXXXXX.log)

echo "chaos soak: $nseeds seeds ($seeds), $per steps each; log $log"
args=(--seeds "$seeds" --steps "$per")
[ -n "${CHAOS_IDS:-}" ] && args+=(--ids "$CHAOS_IDS")
start=$SECONDS
python3 tests/chaos/chaos.py "${args[@]}" 2>&1 | tee "$log" | grep --line-buffered -E \
        '^(=== seed|CHAOS FAIL|CHAOS-RESULT|SKIP)'
rc=${PIPESTATUS[0]}
[ "$rc" -eq 77 ] && exit 77

echo
echo "=== chaos soak summary ($(( SECONDS - start )) s, log $log)"
awk -v ids="${CHAOS_IDS:-}" '
/^CHAOS-RESULT/ {
        for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
        split(f["steps"], st, "/")
        seeds++; steps += st[1]
        if (f["status"] == "fail") {
                fails++; kinds[f["kind"]]++
                replay = "tests/chaos/chaos.py --seed " f["seed"] " --steps " \
                         (st[1] > 0 ? st[1] : 1)
                if (ids != "") replay = replay " --ids " ids
                failed[fails] = sprintf("  seed %-8s %-14s step %-4s %s", f["seed"], f["kind"],
                                        st[1], replay)
        }
}
END {
        printf "seeds run:   %d\nsteps run:   %d\nfailures:    %d\n", seeds, steps, fails
        for (k in kinds) printf "  %-14s %d\n", k, kinds[k]
        if (fails) print "failed seeds:"
        for (i = 1; i <= fails; i++) print failed[i]
}' "$log"
exit "$rc"
