#!/usr/bin/env bash
# The stock qemu-img pipeline that `qcow linearize` replaces, for the bench chain.
# usage: stock.sh SRCDIR OUTDIR STATE...   where STATE is IMAGE[@SNAPSHOT], bottom first (IMAGE without .qcow2)
# For each state: export it in full (convert -l), then make the layer: create -b FULL, safe rebase -b onto the full
# export of the state below (writes what differs), then rebase -u onto the layer below. Ends with sync.
set -euo pipefail
src=$(cd "$1" && pwd); out=$2; shift 2
mkdir -p "$out"; cd "$out"
prev_full=; prev_layer=; i=0
for state in "$@"; do
  img=${state%@*}
  if [[ $state == *@* ]]; then snap=${state#*@}; layer=${img}_${snap}.qcow2; snapopt=(-l "snapshot.name=$snap")
  else snap=; layer=$img.qcow2; snapopt=(); fi
  if [[ -z $prev_layer ]]; then
    qemu-img convert -O qcow2 "${snapopt[@]}" "$src/$img.qcow2" "$layer"
    full=$layer
  else
    full=.full$i.qcow2
    qemu-img convert -O qcow2 "${snapopt[@]}" "$src/$img.qcow2" "$full"
    qemu-img create -q -f qcow2 -b "$full" -F qcow2 "$layer"
    qemu-img rebase -b "$prev_full" -F qcow2 "$layer"
    qemu-img rebase -u -b "$prev_layer" -F qcow2 "$layer"
    [[ $prev_full == .full* ]] && rm -f "$prev_full"
  fi
  prev_full=$full; prev_layer=$layer; i=$((i + 1))
done
[[ $prev_full == .full* ]] && rm -f "$prev_full"
sync
