#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The Debian package, as an operator gets it: dpkg-buildpackage -us -uc -b on a copy of the
# tree, lintian (no errors), apt-get install ./emud_*.deb, the files where the man pages say
# they are, emud --version and emuctl --version from their installed paths, the user and group
# of the sysusers.d file and the runtime directory of the tmpfiles.d file, then apt-get purge:
# nothing of the package's files is left (dpkg -L before, find after).
#
# Run as root on a Debian 12 machine where tests/run.sh installed the build dependencies
# (tests/run.sh test runs it last). Leaves the users emud-emu and emud in place, as Debian
# packages do on purge. Exit 0 pass, 1 fail, 77 cannot run here.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root (it installs and purges a package)"
        exit 77
fi
if dpkg-query -W -f='${Status}' emud 2>/dev/null | grep -q installed; then
        echo "SKIP: a package emud is installed already; this test would replace it"
        exit 77
fi

work=$(mktemp -d /tmp/emud-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
pass() { echo "PASS: $*"; }

# Other distributions package from meson install --destdir: it must go on working on its own.
if [ -f build/build.ninja ]; then
        meson install -C build --destdir "$work/destdir" --quiet > "$work/meson-install.log" 2>&1 ||
                { cat "$work/meson-install.log"; fail "meson install --destdir"; }
        for f in sbin/emud bin/emuctl libexec/emud/emud-libvirt-hook lib/sysusers.d/emud.conf \
                share/emud/emulators/vhost-user-blk.json share/man/man7/emud-libvirt.7; do
                [ -e "$work/destdir/usr/local/$f" ] || fail "meson install --destdir: no $f"
        done
        pass "meson install --destdir installs on its own"
fi

# The tracked files (and new ones not ignored), not the build directories.
mkdir "$work/emud-0.1.0"
git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - |
        tar -xf - -C "$work/emud-0.1.0"
(cd "$work/emud-0.1.0" && dpkg-buildpackage -us -uc -b > "$work/build.log" 2>&1) ||
        { tail -40 "$work/build.log"; fail "dpkg-buildpackage"; }
deb=$(ls "$work"/emud_*_*.deb)
pass "dpkg-buildpackage built $(basename "$deb")"

lintian --allow-root --fail-on error -I "$work"/emud_*.changes | tee "$work/lintian.log" ||
        fail "lintian reports errors"
pass "lintian: no errors ($(grep -c '^[WI]:' "$work/lintian.log" || true) warnings and notes)"

find_ours() {
        find /etc /usr /var /lib /run -xdev \( -name '*emud*' -o -path '*/emud/*' \) \
                -not -path '/var/cache/apt/*' -not -path '/var/lib/apt/*' 2>/dev/null | sort
}
find_ours > "$work/before-install"

apt-get install -y -q "$deb" > "$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install"; }
pass "apt-get install ./$(basename "$deb")"

# Where emud(8), emuctl(1) and emud-libvirt(7) say the files are.
for f in /usr/sbin/emud /usr/bin/emuctl /usr/libexec/emud/emud-libvirt-hook \
        /usr/share/emud/emulators/vhost-user-blk.json /usr/share/emud/policy/vhost-user-blk.policy \
        /usr/lib/systemd/system/emud.service /usr/share/dbus-1/system.d/org.emud.Manager1.conf \
        /usr/lib/sysusers.d/emud.conf /usr/lib/tmpfiles.d/emud.conf \
        /usr/share/bash-completion/completions/emuctl /etc/libvirt/hooks/qemu.d/50-emud \
        /usr/share/man/man8/emud.8.gz /usr/share/man/man1/emuctl.1.gz \
        /usr/share/man/man5/emud.conf.5.gz /usr/share/man/man7/emud-libvirt.7.gz; do
        [ -e "$f" ] || fail "$f is not installed"
done
pass "the files are where the man pages say"

[ "$(/usr/sbin/emud --version)" = "emud 0.1.0" ] || fail "emud --version"
[ "$(/usr/bin/emuctl --version)" = "emuctl 0.1.0" ] || fail "emuctl --version"
pass "emud --version and emuctl --version from /usr/sbin and /usr/bin"

getent passwd emud-emu > /dev/null || fail "no user emud-emu after install"
getent group emud > /dev/null || fail "no group emud after install"
[ "$(stat -c %a /run/emud)" = 711 ] || fail "/run/emud is not there with mode 0711"
pass "systemd-sysusers made emud-emu and emud, systemd-tmpfiles made /run/emud"

dpkg -L emud > "$work/files"
apt-get purge -y -q emud > "$work/purge.log" 2>&1 || { cat "$work/purge.log"; fail "purge"; }
while read -r f; do
        if [ -e "$f" ] && [ ! -d "$f" ]; then
                fail "$f is left after purge"
        fi
done < "$work/files"
for d in /usr/share/emud /usr/libexec/emud /usr/share/doc/emud /run/emud; do
        [ ! -e "$d" ] || fail "$d is left after purge"
done
find_ours > "$work/after-purge"
if ! diff -u "$work/before-install" "$work/after-purge"; then
        fail "purge left files behind (above)"
fi
pass "apt-get purge: nothing of the package is left ($(wc -l < "$work/files") paths checked)"
