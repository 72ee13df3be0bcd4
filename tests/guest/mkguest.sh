#!/bin/bash
# mkguest.sh OUTDIR: build the integration-test guest (OUTDIR/vmlinuz, OUTDIR/initrd.img).
#
# Everything comes from Debian packages (linux-image-amd64's versioned kernel and busybox-static),
# so the tests need nothing beyond the machine's apt mirror. The initramfs is busybox, the virtio
# modules the tests hot-plug against, and an /init that prints EMUD-GUEST-READY on ttyS0 and then
# serves a command loop there (protocol described above the loop below; the Python side is
# tests/integration/emudtest.py, VM.run()).
set -euo pipefail

if [ $# -ne 1 ]; then
        echo "usage: $0 OUTDIR" >&2
        exit 2
fi
outdir=$1
self=${BASH_SOURCE[0]}

# Modules to load at boot, by module name. Their dependencies are added from the kernel's own
# modules.dep, so the list only names what the tests need directly.
# virtio_pci_legacy_dev/_modern_dev are real modules in 6.1 (split out of virtio_pci).
# SCSI, for the multi-process lsi53c895a (PCI 1000:0012): sym53c8xx drives it, sd_mod gives its
# scsi-hd /dev/sda. sd_mod comes before the controller driver so that a disk found while the
# controller is probed gets its sd at once; modules.dep adds scsi_common, scsi_mod,
# scsi_transport_spi and sd_mod's t10-pi and crc modules. crc-t10dif and crc64-rocksoft fall
# back to their generic code when no crypto driver is loaded, so none is needed.
want_modules="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk
fuse virtiofs virtio_gpu
scsi_mod sd_mod scsi_transport_spi sym53c8xx"

# Idempotent: images newer than this script are up to date.
if [ -f "$outdir/vmlinuz" ] && [ -f "$outdir/initrd.img" ] &&
   [ "$outdir/vmlinuz" -nt "$self" ] && [ "$outdir/initrd.img" -nt "$self" ]; then
        exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mkguest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

log() { echo "mkguest: $*" >&2; }

# The meta package only depends on the real, versioned kernel package; resolve it, then fetch
# both packages into $tmp/debs. As root, apt drops to _apt for downloads, which cannot write into
# our 0700 mktemp dir; keep the download as the invoking user instead.
fetch() {
        kpkg=$(apt-cache depends linux-image-amd64 |
               awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
        if [ -z "$kpkg" ]; then
                echo "cannot resolve linux-image-amd64's versioned kernel package" >&2
                return 1
        fi
        echo "downloading $kpkg busybox-static" >&2
        (cd "$tmp/debs" && apt-get -q -o APT::Sandbox::User="$(id -un)" download \
                "$kpkg" busybox-static)
}
mkdir "$tmp/debs"
if ! fetch >"$tmp/apt.log" 2>&1; then
        # Missing or stale package lists are the usual cause: refresh once, then retry.
        log "apt-get download failed, running apt-get update and retrying"
        apt-get -q update >>"$tmp/apt.log" 2>&1 || true
        rm -f "$tmp"/debs/*
        if ! fetch >>"$tmp/apt.log" 2>&1; then
                cat "$tmp/apt.log" >&2
                exit 1
        fi
fi
log "fetched $(cd "$tmp/debs" && echo *.deb)"

mkdir "$tmp/x"
for deb in "$tmp"/debs/*.deb; do
        dpkg -x "$deb" "$tmp/x"
done

bb=$tmp/x/bin/busybox
[ -x "$bb" ] || bb=$tmp/x/usr/bin/busybox
# compgen -G rather than ls: no match must not abort us under pipefail. One kernel per package.
vmlinuz=$(compgen -G "$tmp/x/boot/vmlinuz-*" || true)
order_file=$(compgen -G "$tmp/x/lib/modules/*/modules.order" ||
             compgen -G "$tmp/x/usr/lib/modules/*/modules.order" || true)
moddir=$(dirname "$order_file")
kver=$(basename "$moddir")
if [ ! -x "$bb" ] || [ -z "$vmlinuz" ] || [ ! -d "$moddir/kernel" ]; then
        log "unexpected package contents (busybox=$bb vmlinuz=$vmlinuz moddir=$moddir)"
        exit 1
fi
log "kernel $kver"

# Debian's package does not ship modules.dep (postinst generates it), so generate it for this
# kernel's tree. depmod -b BASE reads BASE/lib/modules/VER.
if [ ! -f "$moddir/modules.dep" ]; then
        if ! command -v depmod >/dev/null; then
                log "depmod (kmod) is needed to compute module dependencies"
                exit 1
        fi
        depmod -b "$(dirname "$(dirname "$(dirname "$moddir")")")" "$kver"
fi

# module name -> path relative to moddir, as modules.dep spells it. Names treat - and _ alike.
modpath() {
        awk -F: -v want="$1" '{
                n = $1; sub(/.*\//, "", n); sub(/\.ko(\.(xz|gz|zst))?$/, "", n); gsub(/-/, "_", n)
                if (n == want) { print $1; exit }
        }' "$moddir/modules.dep"
}
moddeps() {
        awk -F: -v p="$1" '$1 == p { print $2; exit }' "$moddir/modules.dep"
}

# Depth-first over modules.dep: a module comes after everything it depends on. modules.dep lists
# a module's dependencies so that the last one must be loaded first, hence the reversed walk.
order=()
declare -A seen=()
visit() {
        local p=$1 i deps=()
        [ -n "${seen[$p]:-}" ] && return 0
        seen[$p]=1
        read -r -a deps <<<"$(moddeps "$p")"
        for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
                visit "${deps[$i]}"
        done
        order+=("$p")
}
for m in $want_modules; do
        p=$(modpath "$m")
        if [ -z "$p" ]; then
                # Built in, or not in this kernel: either way nothing to load.
                if grep -qE "/${m//_/[-_]}\.ko\$" "$moddir/modules.builtin" 2>/dev/null; then
                        log "$m is built in"
                else
                        log "warning: module $m not found in $kver"
                fi
                continue
        fi
        visit "$p"
done

# Stage the initramfs tree.
root=$tmp/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,mnt,lib/modules}
cp "$bb" "$root/bin/busybox"
# Applet links at build time (the static busybox runs here too), so /init needs no setup step.
"$bb" --list-full | while read -r applet; do
        [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
# The kernel opens /dev/console for init before /init can mount devtmpfs.
mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || log "warning: cannot mknod /dev/console"

names=()
for p in "${order[@]}"; do
        n=$(basename "$p")
        case $n in
        *.ko.xz) xz -dc "$moddir/$p" >"$root/lib/modules/${n%.xz}" ;;
        *.ko.gz) gzip -dc "$moddir/$p" >"$root/lib/modules/${n%.gz}" ;;
        *.ko.zst) zstd -qdc "$moddir/$p" >"$root/lib/modules/${n%.zst}" ;;
        *) cp "$moddir/$p" "$root/lib/modules/$n" ;;
        esac
        n=${n%.xz}; n=${n%.gz}; n=${n%.zst}
        names+=("${n%.ko}")
done
log "modules: ${names[*]}"

cat >"$root/init" <<EOF
#!/bin/sh
# PID 1 of the emud test guest, generated by tests/guest/mkguest.sh for kernel $kver.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
# Talk on the serial port explicitly: /dev/console may be missing or not be ttyS0.
exec </dev/ttyS0 >/dev/ttyS0 2>&1
for m in ${names[*]}; do
        insmod /lib/modules/\$m.ko || echo "EMUD-GUEST-WARN insmod \$m failed"
done
# No echo: the harness would read its own commands back.
stty -echo
echo EMUD-GUEST-READY

# Command loop. The harness sends one line "ID BASE64"; base64 keeps the tty's line editing
# characters out of the command. The reply is
#   EMUD-BEGIN ID\n<output of the command, stdout+stderr>\nEMUD-DONE ID RC\n
# The newline before EMUD-DONE is always added, so output without a trailing newline stays exact.
# Commands run in their own shell with stdin at /dev/null so they can neither exit PID 1 nor eat
# the next command line.
while :; do
        if ! read -r id b64; then
                sleep 1
                continue
        fi
        [ -n "\$id" ] || continue
        echo "EMUD-BEGIN \$id"
        echo "\$b64" | base64 -d >/tmp/.cmd
        sh /tmp/.cmd </dev/null
        rc=\$?
        printf '\nEMUD-DONE %s %s\n' "\$id" "\$rc"
done
EOF
chmod 755 "$root/init"

mkdir -p "$outdir"
(cd "$root" && find . | "$bb" cpio -o -H newc 2>/dev/null) | gzip -9 >"$outdir/.initrd.img.tmp"
cp "$vmlinuz" "$outdir/.vmlinuz.tmp"
mv "$outdir/.vmlinuz.tmp" "$outdir/vmlinuz"
mv "$outdir/.initrd.img.tmp" "$outdir/initrd.img"
log "wrote $outdir/vmlinuz $outdir/initrd.img ($(du -k "$outdir/initrd.img" | cut -f1) KiB)"
