#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# One entry point for a fresh Debian 12 machine, as root:
#   tests/run.sh demo   install what is needed, build, run the demo
#   tests/run.sh test   install what is needed, build, run every test suite
#   tests/run.sh build  install what is needed and build
# Set EMUD_NO_APT=1 to skip the package step on a machine that already has everything.
set -euo pipefail

cd "$(dirname "$0")/.."
mode=${1:-}
case "$mode" in
demo|test|build) ;;
*) echo "usage: $0 demo|test|build" >&2; exit 2 ;;
esac

# Build: compiler, meson, and the libraries emud links against.
# Run: dbus-daemon for the private test bus, busctl (systemd) for introspection checks, QEMU and
# qemu-storage-daemon, virtiofsd (qemu-system-common), vhost-user-gpu (qemu-system-gui), python3
# for the integration harness, libvirtd and virsh for the libvirt test, bash-completion for the
# completion test, debhelper and lintian for the package test. The test guest is built from
# linux-image-amd64 and busybox-static with apt-get download, kmod's depmod and xz.
packages=(
        gcc meson ninja-build pkg-config
        libglib2.0-dev libjansson-dev libsystemd-dev libseccomp-dev libvirt-dev libxml2-dev
        dbus dbus-daemon systemd procps
        qemu-system-x86 qemu-system-common qemu-system-gui qemu-utils
        python3 busybox-static kmod xz-utils zstd ca-certificates
        libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients bash-completion
        debhelper dpkg-dev lintian
)

if [ "${EMUD_NO_APT:-0}" != 1 ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "$0: run as root (it installs Debian packages), or set EMUD_NO_APT=1" >&2
                exit 1
        fi
        missing=()
        for p in "${packages[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
                        missing+=("$p")
        done
        if [ ${#missing[@]} -gt 0 ]; then
                echo "== installing: ${missing[*]}"
                export DEBIAN_FRONTEND=noninteractive
                apt-get update -q
                apt-get install -y -q --no-install-recommends "${missing[@]}"
        fi
fi

echo "== building"
if [ ! -f build/build.ninja ]; then
        meson setup build -Dwerror=true
fi
ninja -C build

case "$mode" in
build) ;;
demo) exec python3 tests/demo.py ;;
test)
        meson test -C build --print-errorlogs
        # The same suites again with AddressSanitizer and UBSan: a use-after-free in emud
        # that the plain build survives by luck fails here (LeakSanitizer checks emud's exit).
        echo "== building and testing with ASan/UBSan (build-asan/)"
        if [ ! -f build-asan/build.ninja ]; then
                meson setup build-asan -Dwerror=true -Db_sanitize=address,undefined \
                        -Db_lundef=false
        fi
        ninja -C build-asan
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
                meson test -C build-asan --print-errorlogs
        # Last, since it leaves the users emud-emu and emud behind, as a package does.
        echo "== the Debian package: build, lintian, install, purge"
        tests/package/test-deb.sh
        ;;
esac
