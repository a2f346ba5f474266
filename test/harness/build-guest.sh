#!/usr/bin/env bash
# Builds the tiny test guest for the libvirt tests: a Debian kernel (from the linux-image-amd64
# package's versioned dependency) and a busybox-static initramfs whose /init prints a marker on the
# serial console, stamps/reads /dev/vda, and powers off when the ACPI power button is pressed. With
# `factory.listen=PORT` on its kernel command line it brings its NIC up (IPv6 link-local only) and
# accepts TCP connections on PORT: what the VM health-check tests probe.
#
# Usage: build-guest.sh [OUT_DIR]   (default /var/lib/factory-test/guest; must be readable by libvirt-qemu)
# Writes OUT_DIR/vmlinuz, OUT_DIR/initrd.img and OUT_DIR/guest-version; does nothing when they exist
# and guest-version is GUEST_VERSION (a guest cached by an older script is built again).
# Needs: apt-get (download only), dpkg-deb, busybox-static, cpio, gzip; xz/zstd for compressed modules.
set -euo pipefail
out=${1:-/var/lib/factory-test/guest}
GUEST_VERSION=2
if [ -s "$out/vmlinuz" ] && [ -s "$out/initrd.img" ] && [ "$(cat "$out/guest-version" 2>/dev/null)" = "$GUEST_VERSION" ]; then exit 0; fi
mkdir -p "$out"
chmod 0755 "$out" "$(dirname "$out")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

kernel_pkg() { apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -n1; }
pkg=$(kernel_pkg)
if [ -z "$pkg" ]; then apt-get update -qq; pkg=$(kernel_pkg); fi
[ -n "$pkg" ] || { echo "build-guest: cannot find the versioned kernel package of linux-image-amd64" >&2; exit 1; }
apt-get download "$pkg" >/dev/null 2>&1 || { apt-get update -qq && apt-get download "$pkg" >/dev/null; }
dpkg-deb -x ./*.deb root
kver=$(ls root/lib/modules | head -n1)
mods=root/lib/modules/$kver/kernel

mkdir -p initrd/bin initrd/sbin initrd/etc initrd/proc initrd/sys initrd/dev initrd/modules initrd/tmp
cp /bin/busybox initrd/bin/busybox
for m in drivers/acpi/button drivers/input/evdev drivers/virtio/virtio_ring \
         drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
         drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk \
         net/core/failover drivers/net/net_failover drivers/net/virtio_net; do
  name=$(basename "$m")
  for ext in ko ko.xz ko.zst ko.gz; do
    f="$mods/$m.$ext"
    [ -f "$f" ] || continue
    case $ext in
      ko) cp "$f" "initrd/modules/$name.ko" ;;
      ko.xz) xz -dc "$f" > "initrd/modules/$name.ko" ;;
      ko.zst) zstd -qdc "$f" > "initrd/modules/$name.ko" ;;
      ko.gz) gzip -dc "$f" > "initrd/modules/$name.ko" ;;
    esac
    echo "$name" >> initrd/modules/order
  done
done

cat > initrd/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
[ -f /modules/order ] && while read -r m; do insmod "/modules/$m.ko" 2>/dev/null; done < /modules/order
sleep 1
if [ -b /dev/vda ]; then
  stamp=$(head -c 64 /dev/vda | tr -d '\000' | head -n1)
  echo "FACTORY-GUEST-DISK: ${stamp:-blank}" > /dev/console
  printf 'factory-disk-stamp\n' | dd of=/dev/vda conv=notrunc,fsync 2>/dev/null
fi
# Open every power button device before saying READY: evdev queues events from the open on, so a
# press right after READY is never lost. One reader per device; the first press powers off.
n=3
for ev in /sys/class/input/event*; do
  [ "$(cat "$ev/device/name" 2>/dev/null)" = "Power Button" ] || continue
  eval "exec $n< /dev/input/${ev##*/}"
  ( head -c 1 <&$n > /dev/null; echo "FACTORY-GUEST-POWER-BUTTON" > /dev/console; sync; poweroff -f ) &
  n=$((n + 1))
done
# factory.listen=PORT: the NIC up (the kernel gives it its EUI-64 link-local address) and a TCP server on PORT
for arg in $(cat /proc/cmdline); do
  case $arg in
    factory.listen=*)
      port=${arg#factory.listen=}
      ip link set lo up; ip link set eth0 up 2>/dev/null
      nc -ll -p "$port" -e true </dev/null >/dev/null 2>&1 &
      echo "FACTORY-GUEST-LISTEN: $port" > /dev/console ;;
  esac
done
echo "FACTORY-GUEST-READY" > /dev/console
while :; do sleep 3600; done
INIT
chmod 0755 initrd/init
(cd initrd && find . | cpio -o -H newc --quiet | gzip -9) > initrd.img
cp "root/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv initrd.img "$out/initrd.img.tmp"
chmod 0644 "$out/vmlinuz.tmp" "$out/initrd.img.tmp"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
mv "$out/initrd.img.tmp" "$out/initrd.img"
echo "$GUEST_VERSION" > "$out/guest-version"
echo "build-guest: kernel $kver, modules: $(tr '\n' ' ' < initrd/modules/order)" >&2
