#!/usr/bin/env bash
# Makes the seed chain's small source images with qemu-img and qemu-io (needs qemu-utils):
#   imageA (snapshot sn0) <- imageB (snapshots sn0, sn1) <- imageC (snapshot sn0)
# 4 MiB virtual disks with a few KiB of data each, 4 KiB clusters so the committed files stay small.
# Data is written with fixed byte patterns, zero writes and discards between snapshots.
set -euo pipefail
cd "$(dirname "$0")/images"
rm -f imageA.qcow2 imageB.qcow2 imageC.qcow2
opts=cluster_size=4096
io() { local img=$1; shift; for c in "$@"; do qemu-io -c "$c" "$img" >/dev/null; done; }

qemu-img create -q -f qcow2 -o $opts imageA.qcow2 4M
io imageA.qcow2 "write -P 0x11 0 8k" "write -P 0x12 1M 4k" "write -P 0x13 3M 12k"
qemu-img snapshot -c sn0 imageA.qcow2
io imageA.qcow2 "write -P 0x14 4k 4k" "write -z 1M 4k"

qemu-img create -q -f qcow2 -o $opts -b imageA.qcow2 -F qcow2 imageB.qcow2 4M
io imageB.qcow2 "write -P 0x21 64k 8k"
qemu-img snapshot -c sn0 imageB.qcow2
io imageB.qcow2 "discard 0 4k" "write -P 0x22 2M 4k"
qemu-img snapshot -c sn1 imageB.qcow2
io imageB.qcow2 "write -P 0x23 3M 4k" "write -z 64k 4k"

qemu-img create -q -f qcow2 -o $opts -b imageB.qcow2 -F qcow2 imageC.qcow2 4M
io imageC.qcow2 "write -P 0x31 512k 4k"
qemu-img snapshot -c sn0 imageC.qcow2
io imageC.qcow2 "write -P 0x32 0 4k" "write -P 0x33 2M 8k"

ls -l imageA.qcow2 imageB.qcow2 imageC.qcow2
