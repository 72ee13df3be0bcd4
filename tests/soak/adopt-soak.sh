#!/bin/bash
# Soak: the adoption test with many SIGKILL/restart cycles (default 500). Not part of
# `meson test`; run by hand after building: tests/soak/adopt-soak.sh [CYCLES]
set -euo pipefail
cd "$(dirname "$0")/../.."
EMUD_ADOPT_CYCLES=${1:-500} exec python3 tests/integration/test-adopt.py
