#!/usr/bin/env bash
# Benchmark `qcow linearize` / `qcow convert -l` against the stock qemu-img pipeline. See README ("Benchmarks").
#
#   bash bench/run.sh                 # full size: 16 GiB virtual, 1.5 GiB in imageA, 6 x 250 MiB of changes
#   bash bench/run.sh --tiny          # CI: a few MiB, one run each; fails only if outputs differ from qemu-img's
#   bash bench/run.sh --sparse        # sparse chain (~60 MiB of data) at 16 GiB vs 1 TiB virtual
#   bash bench/run.sh --seed-shape    # the chain shaped like the seed's: 8 GiB virtual, 1 GiB in imageA, 6 x 128 MiB
#   options: --virtual SIZE --base SIZE --delta SIZE --runs N --seed N --sections LIST --out DIR --keep
#            --sparse-sizes "16G 1T" --sparse-stock-runs N (0: time qcow alone, compare nothing)
#            --qcow DIR       time the qcow.dll in DIR instead of publishing src/Qcow.Cli (as a tool install gives
#                             it: for this platform, ReadyToRun)
#            --baseline DIR   also time the qcow.dll in DIR (an older build) in the same rotation: before/after
#   --compress-size SIZE   data in the compress section's image (default 256M; 16M with --tiny)
#   sections (comma separated): chain, export, copy, mem, sparse, compress, reflink
#   reflink: the chain copied onto a loop-mounted XFS (reflink=1) made in the out folder (needs root, xfsprogs)
# Timing is informational only: nothing here fails on speed. It fails (non-zero) when a layer written by
# `qcow linearize` or an export by `qcow convert` differs in content from qemu-img's (qemu-img compare), or when
# `qemu-img check` finds a problem in what qcow wrote.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

virtual=16G; base=1.5G; delta=250M; wmin=4K; wmax=1M; zero_pct=10; runs=3; seed=6
sections=chain,export,copy,mem; out=$here/out; keep=0; build=1; baseline=; qcow_dir=
mem_virtual=64G; mem_base=512M; mem_delta=64M
sparse_sizes="16G 1T"; sparse_base=30M; sparse_delta=5M; sparse_stock_runs=1
compress_size=256M
while [[ $# -gt 0 ]]; do
  case $1 in
    --tiny) virtual=256M; base=8M; delta=2M; wmax=256K; runs=1; sections=chain,export,copy,mem,compress,reflink
            mem_base=4M; mem_delta=1M; compress_size=16M; shift ;;
    --sparse) sections=sparse; shift ;;
    --seed-shape) virtual=8G; base=1G; delta=128M; shift ;;
    --virtual) virtual=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --delta) delta=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --sections) sections=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-build) build=0; shift ;;
    --qcow) qcow_dir=$(cd "$2" && pwd); build=0; shift 2 ;;
    --baseline) baseline=$(cd "$2" && pwd)/qcow.dll; shift 2 ;;
    --sparse-sizes) sparse_sizes=$2; shift 2 ;;
    --sparse-stock-runs) sparse_stock_runs=$2; shift 2 ;;
    --compress-size) compress_size=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

for tool in qemu-img qemu-io python3 dotnet numfmt; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 2; }
done
bytes() { numfmt --from=iec "$1"; }
has() { [[ ",$sections," == *",$1,"* ]]; }

# The CLI as a tool install gives it: published for this machine's platform, precompiled (ReadyToRun).
rid=$(dotnet --info | awk '$1 == "RID:" { print $2; exit }')
qcow_dll=${qcow_dir:-$root/src/Qcow.Cli/bin/Release/net10.0/$rid/publish}/qcow.dll
if [[ $build == 1 ]]; then
  dotnet publish "$root/src/Qcow.Cli" -c Release -r "$rid" --self-contained false -v q -nologo >/dev/null
fi
qcow() { dotnet "$qcow_dll" "$@"; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
results=$out/results.tsv; sizes=$out/sizes.tsv
: > "$results"; : > "$sizes"
states=(imageA@sn0 imageA imageB@sn0 imageB@sn1 imageB imageC@sn0 imageC)
layers=(imageA_sn0.qcow2 imageA.qcow2 imageB_sn0.qcow2 imageB_sn1.qcow2 imageB.qcow2 imageC_sn0.qcow2 imageC.qcow2)
failures=0; checks=0

# apply IMAGE SEED TOTAL MIN MAX: seeded random writes (and some zero writes) into IMAGE with qemu-io.
apply() {
  local img=$1 s=$2 total=$3 lo=$4 hi=$5 dir; dir=$(dirname "$img")
  python3 "$here/gen.py" "$s" "$dir/.data" "$(qemu-img info --output=json "$img" | sed -n 's/.*"virtual-size": \([0-9]*\).*/\1/p')" \
    "$(bytes "$total")" "$(bytes "$lo")" "$(bytes "$hi")" "$zero_pct" > "$dir/.cmds"
  if qemu-io -f qcow2 "$img" < "$dir/.cmds" 2>&1 >/dev/null | grep . >&2; then
    echo "run.sh: qemu-io reported errors writing $img" >&2; exit 2
  fi
  rm -rf "$dir/.data" "$dir/.cmds"
}

# gen_chain DIR VIRTUAL BASE DELTA SEED: imageA(sn0) -> imageB(sn0,sn1) -> imageC(sn0), 64 KiB clusters.
gen_chain() {
  local dir=$1 v=$2 b=$3 d=$4 s=$5
  if [[ -f $dir/.done ]] && [[ $(cat "$dir/.done") == "$v $b $d $s $wmin $wmax $zero_pct" ]]; then
    echo "== reusing chain in $dir"; return
  fi
  echo "== generating chain in $dir: $v virtual, $b in imageA, $d at each later state (seed $s)"
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cd "$dir"
    qemu-img create -q -f qcow2 -o cluster_size=64k imageA.qcow2 "$v"
    apply imageA.qcow2 $((s * 100)) "$b" 64K 4M
    # Then six states of changes: a snapshot closes a state; a new image starts on top of the one below.
    local step n=1 words
    for step in "snap imageA sn0" "write imageA" "new imageB imageA" "write imageB" "snap imageB sn0" "write imageB" \
                "snap imageB sn1" "write imageB" "new imageC imageB" "write imageC" "snap imageC sn0" "write imageC"; do
      read -ra words <<< "$step"
      case ${words[0]} in
        snap) qemu-img snapshot -c "${words[2]}" "${words[1]}.qcow2" ;;
        new) qemu-img create -q -f qcow2 -o cluster_size=64k -b "${words[2]}.qcow2" -F qcow2 "${words[1]}.qcow2" ;;
        write) apply "${words[1]}.qcow2" $((s * 100 + n)) "$d" "$wmin" "$wmax"; n=$((n + 1)) ;;
      esac
    done
  )
  echo "$v $b $d $s $wmin $wmax $zero_pct" > "$dir/.done"
  sync
}

measure() { python3 "$here/measure.py" "$results" "$@"; }
size_of() { local t=0 f; for f in "$@"; do t=$((t + $(stat -c %s "$f"))); done; echo "$t"; }

# check_layers LABEL OURS STOCK: every layer of ours has the content of stock's (with backing chains), and is clean.
check_layers() {
  local label=$1 ours=$2 stock=$3 l
  for l in "${layers[@]}"; do
    checks=$((checks + 1))
    if ! qemu-img compare -q -f qcow2 -F qcow2 "$ours/$l" "$stock/$l"; then
      echo "FAIL [$label] $l: content differs from the stock pipeline's" >&2; failures=$((failures + 1))
    fi
    if ! qemu-img check -q "$ours/$l" >/dev/null; then
      echo "FAIL [$label] $l: qemu-img check reports problems" >&2; failures=$((failures + 1))
    fi
  done
}

# timed_qcow LABEL OUT RUN ARGS...: times `qcow ARGS... OUT`, then sync, as LABEL (OUT removed first; RUN is "r/n");
# with --baseline, the baseline build's the same way as LABEL-baseline, into OUT-baseline, removed after. The two take
# turns going first (this build in odd runs): a run right after another's gigabytes of writes may pay for some of
# their writeback, which must not always fall on the same build.
timed_qcow() {
  local label=$1 dest=$2 run=$3; shift 3
  local dll bdest=${dest%.qcow2}-baseline dlls=("$qcow_dll")
  [[ $dest == *.qcow2 ]] && bdest+=.qcow2
  if [[ -n $baseline ]]; then
    if (( ${run%%/*} % 2 )); then dlls+=("$baseline"); else dlls=("$baseline" "$qcow_dll"); fi
  fi
  for dll in "${dlls[@]}"; do
    local l=$label d=$dest who=
    [[ $dll == "$qcow_dll" ]] || { l=$label-baseline; d=$bdest; who="baseline "; }
    rm -rf "$d"; sync
    echo "-- ${label%%/*}: ${who}qcow $1, run $run"
    measure "$l" -- bash -c 'dll=$0 out=$1; shift; dotnet "$dll" "$@" "$out" >/dev/null && sync' "$dll" "$d" "$@"
    [[ $d == "$dest" ]] || rm -rf "$d"
  done
}

# linearize_vs_stock PREFIX CHAINDIR STOCKRUNS QCOWRUNS: alternate the two pipelines, then compare the outputs.
linearize_vs_stock() {
  local p=$1 chain=$2 sruns=$3 qruns=$4 r n
  n=$(( sruns > qruns ? sruns : qruns ))
  for ((r = 1; r <= n; r++)); do
    if (( r <= sruns )); then
      rm -rf "$out/stock"; sync
      echo "-- $p: stock pipeline, run $r/$sruns"
      measure "$p/stock" -- bash "$here/stock.sh" "$chain" "$out/stock" "${states[@]}"
    fi
    if (( r <= qruns )); then
      timed_qcow "$p/qcow" "$out/qcow" "$r/$qruns" linearize "$chain/imageC.qcow2"
    fi
  done
  echo -e "$p/qcow\t$(size_of "${layers[@]/#/$out/qcow/}")" >> "$sizes"
  # With no stock run (--sparse-stock-runs 0) there is nothing to compare with: qcow is only timed.
  if (( sruns > 0 )); then
    echo -e "$p/stock\t$(size_of "${layers[@]/#/$out/stock/}")" >> "$sizes"
    check_layers "$p" "$out/qcow" "$out/stock"
  fi
  [[ $keep == 1 ]] || rm -rf "$out/stock" "$out/qcow"
}

chain=$out/chain
if has chain || has export || has copy || has reflink; then
  gen_chain "$chain" "$virtual" "$base" "$delta" "$seed"
fi

if has chain; then
  linearize_vs_stock chain "$chain" "$runs" "$runs"
fi

if has export; then
  for ((r = 1; r <= runs; r++)); do
    rm -f "$out/export-qemu.qcow2" "$out/export-qcow.qcow2"; sync
    echo "-- export: qemu-img convert -l, run $r/$runs"
    measure export/qemu-img -- bash -c 'qemu-img convert -O qcow2 -l snapshot.name=sn0 "$0" "$1" && sync' "$chain/imageA.qcow2" "$out/export-qemu.qcow2"
    timed_qcow export/qcow "$out/export-qcow.qcow2" "$r/$runs" convert -l snapshot.name=sn0 "$chain/imageA.qcow2"
  done
  echo -e "export/qemu-img\t$(size_of "$out/export-qemu.qcow2")" >> "$sizes"
  echo -e "export/qcow\t$(size_of "$out/export-qcow.qcow2")" >> "$sizes"
  checks=$((checks + 1))
  if ! qemu-img compare -q -f qcow2 -F qcow2 "$out/export-qcow.qcow2" "$out/export-qemu.qcow2"; then
    echo "FAIL [export] qcow convert -l differs from qemu-img convert -l" >&2; failures=$((failures + 1))
  fi
  rm -f "$out/export-qemu.qcow2" "$out/export-qcow.qcow2"
fi

if has copy; then
  for ((r = 1; r <= runs; r++)); do
    rm -rf "$out/copy"; mkdir -p "$out/copy"; sync
    echo "-- copy floor: cp of the three sources + sync, run $r/$runs"
    measure chain/copy -- bash -c 'cp "$0"/imageA.qcow2 "$0"/imageB.qcow2 "$0"/imageC.qcow2 "$1"/ && sync' "$chain" "$out/copy"
  done
  echo -e "chain/copy\t$(size_of "$out"/copy/*.qcow2)" >> "$sizes"
  rm -rf "$out/copy"
fi

if has mem; then
  memchain=$out/chain-mem
  gen_chain "$memchain" "$mem_virtual" "$mem_base" "$mem_delta" $((seed + 1))
  rm -rf "$out/qcow-mem"; sync
  echo "-- mem: qcow linearize on a $mem_virtual virtual chain"
  measure mem/qcow-linearize -- bash -c 'dotnet "$0" linearize "$1" "$2" >/dev/null && sync' "$qcow_dll" "$memchain/imageC.qcow2" "$out/qcow-mem"
  echo -e "mem/qcow-linearize\t$(size_of "${layers[@]/#/$out/qcow-mem/}")" >> "$sizes"
  for l in "${layers[@]}"; do
    qemu-img check -q "$out/qcow-mem/$l" >/dev/null || { echo "FAIL [mem] $l: qemu-img check" >&2; failures=$((failures + 1)); }
  done
  rm -rf "$out/qcow-mem"
  echo "-- mem: qcow convert -l on the $mem_virtual virtual image"
  measure mem/qcow-convert -- bash -c 'dotnet "$0" convert -l snapshot.name=sn0 "$1" "$2" && sync' "$qcow_dll" "$memchain/imageA.qcow2" "$out/export-mem.qcow2"
  echo -e "mem/qcow-convert\t$(size_of "$out/export-mem.qcow2")" >> "$sizes"
  rm -f "$out/export-mem.qcow2"
  [[ $keep == 1 ]] || rm -rf "$memchain"
fi

if has sparse; then
  for v in $sparse_sizes; do
    sp=$out/chain-sparse-$v
    gen_chain "$sp" "$v" "$sparse_base" "$sparse_delta" $((seed + 2))
    linearize_vs_stock "sparse-$v" "$sp" "$sparse_stock_runs" "$runs"
    [[ $keep == 1 ]] || rm -rf "$sp"
  done
fi

if has compress; then
  # Deflate (zlib) compression, as -c writes it: qemu-img's (the system zlib, level 6) against qcow's managed
  # encoder, on seeded compressible data, 64 KiB clusters. Both must read back as the source.
  cdir=$out/compress
  rm -rf "$cdir"; mkdir -p "$cdir"
  python3 "$here/compressible.py" "$seed" "$cdir/src.raw" "$(bytes "$compress_size")"
  qemu-img convert -f raw -O qcow2 "$cdir/src.raw" "$cdir/src.qcow2"
  for ((r = 1; r <= runs; r++)); do
    rm -f "$cdir/qemu.qcow2" "$cdir/qcow.qcow2"; sync
    echo "-- compress: qemu-img convert -c, run $r/$runs"
    measure compress/qemu-img -- bash -c 'qemu-img convert -c -O qcow2 -o compression_type=zlib "$0" "$1" && sync' "$cdir/src.qcow2" "$cdir/qemu.qcow2"
    echo "-- compress: qcow convert -c, run $r/$runs"
    measure compress/qcow -- bash -c 'dotnet "$0" convert -c -o compression_type=zlib "$1" "$2" && sync' "$qcow_dll" "$cdir/src.qcow2" "$cdir/qcow.qcow2"
    # The encoders alone, per core: both tools on one CPU (qemu-img compresses in a thread pool, qcow in parallel).
    if command -v taskset >/dev/null; then
      rm -f "$cdir/qemu1.qcow2" "$cdir/qcow1.qcow2"; sync
      echo "-- compress: both on one core, run $r/$runs"
      measure compress/qemu-img-1-core -- taskset -c 0 bash -c 'qemu-img convert -c -O qcow2 -o compression_type=zlib "$0" "$1" && sync' "$cdir/src.qcow2" "$cdir/qemu1.qcow2"
      measure compress/qcow-1-core -- taskset -c 0 bash -c 'dotnet "$0" convert -c -o compression_type=zlib "$1" "$2" && sync' "$qcow_dll" "$cdir/src.qcow2" "$cdir/qcow1.qcow2"
    fi
  done
  echo -e "compress/source\t$(size_of "$cdir/src.raw")" >> "$sizes"
  echo -e "compress/qemu-img\t$(size_of "$cdir/qemu.qcow2")" >> "$sizes"
  echo -e "compress/qcow\t$(size_of "$cdir/qcow.qcow2")" >> "$sizes"
  checks=$((checks + 1))
  if ! qemu-img compare -q -f raw -F qcow2 "$cdir/src.raw" "$cdir/qcow.qcow2" || ! qemu-img check -q "$cdir/qcow.qcow2" >/dev/null; then
    echo "FAIL [compress] qcow convert -c does not read back as its source, or qemu-img check reports problems" >&2
    failures=$((failures + 1))
  fi
  [[ $keep == 1 ]] || rm -rf "$cdir"
fi

if has reflink; then
  # On a file system that shares extents: qemu-img convert -C (copy offloading) against qcow convert for the export,
  # and qcow linearize against hashing the sources once (cat | openssl dgst -sha256), all on a loop-mounted XFS.
  missing=
  [[ $(id -u) == 0 ]] || missing="needs root to loop-mount a file system"
  for tool in losetup mkfs.xfs mount umount openssl; do
    [[ -n $missing ]] || command -v "$tool" >/dev/null || missing="needs $tool (apt-get install -y xfsprogs openssl)"
  done
  if [[ -n $missing ]]; then
    echo "-- reflink: skipped: $missing"
  else
    rimg=$out/reflink.img; rmnt=$out/reflink
    mkdir -p "$rmnt"
    # Sparse: room for the sources, the outputs in full (when nothing is shared) and the exports.
    truncate -s $(( $(size_of "$chain"/image?.qcow2) * 4 + (2 << 30) )) "$rimg"
    rdev=$(losetup --find --show "$rimg")
    # shellcheck disable=SC2329
    reflink_cleanup() { umount "$rmnt" 2>/dev/null || umount -l "$rmnt"; losetup -d "$rdev"; rm -f "$rimg"; rmdir "$rmnt"; }
    trap reflink_cleanup EXIT
    mkfs.xfs -q -m reflink=1 "$rdev"
    mount "$rdev" "$rmnt"
    mkdir -p "$rmnt/chain"
    cp "$chain"/image?.qcow2 "$rmnt/chain/"
    sync
    # Sources in the page cache, as in the other sections.
    cat "$rmnt"/chain/image?.qcow2 > /dev/null
    for ((r = 1; r <= runs; r++)); do
      rm -f "$rmnt/export-qemu.qcow2" "$rmnt/export-qcow.qcow2"; sync
      echo "-- reflink: qemu-img convert -C -l, run $r/$runs"
      measure reflink/qemu-img-C -- bash -c 'qemu-img convert -C -O qcow2 -l snapshot.name=sn0 "$0" "$1" && sync' "$rmnt/chain/imageA.qcow2" "$rmnt/export-qemu.qcow2"
      timed_qcow reflink/qcow-convert "$rmnt/export-qcow.qcow2" "$r/$runs" convert -l snapshot.name=sn0 "$rmnt/chain/imageA.qcow2"
      echo "-- reflink: hash the sources once, run $r/$runs"
      measure reflink/hash-sources -- bash -c 'cat "$0"/image?.qcow2 | openssl dgst -sha256 >/dev/null' "$rmnt/chain"
      timed_qcow reflink/qcow-linearize "$rmnt/qcow" "$r/$runs" linearize "$rmnt/chain/imageC.qcow2"
    done
    echo -e "reflink/qemu-img-C\t$(size_of "$rmnt/export-qemu.qcow2")" >> "$sizes"
    echo -e "reflink/qcow-convert\t$(size_of "$rmnt/export-qcow.qcow2")" >> "$sizes"
    echo -e "reflink/qcow-linearize\t$(size_of "${layers[@]/#/$rmnt/qcow/}")" >> "$sizes"
    checks=$((checks + 1))
    if ! qemu-img compare -q -f qcow2 -F qcow2 "$rmnt/export-qcow.qcow2" "$rmnt/export-qemu.qcow2" || ! qemu-img check -q "$rmnt/export-qcow.qcow2" >/dev/null; then
      echo "FAIL [reflink] qcow convert -l differs from qemu-img convert -C -l, or qemu-img check reports problems" >&2
      failures=$((failures + 1))
    fi
    # Every layer written on XFS is byte for byte the one written on the plain file system of the out folder.
    rm -rf "$out/reflink-plain"
    qcow linearize "$rmnt/chain/imageC.qcow2" "$out/reflink-plain" >/dev/null
    for l in "${layers[@]}" chain.json; do
      checks=$((checks + 1))
      if ! cmp -s "$rmnt/qcow/$l" "$out/reflink-plain/$l"; then
        echo "FAIL [reflink] $l: differs from the same linearize on $(stat -f -c %T "$out")" >&2; failures=$((failures + 1))
      elif [[ $l != chain.json ]] && ! qemu-img check -q "$rmnt/qcow/$l" >/dev/null; then
        echo "FAIL [reflink] $l: qemu-img check reports problems" >&2; failures=$((failures + 1))
      fi
    done
    rm -rf "$out/reflink-plain"
    reflink_cleanup; trap - EXIT
  fi
fi

[[ $keep == 1 ]] || rm -rf "$chain"

echo
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n 1), $(free -g | awk '/Mem:/ {print $2}') GiB RAM;" \
  "$(qemu-img --version | head -n 1); dotnet $(dotnet --version)"
echo "chain: $virtual virtual, $base in imageA, $delta at each of 6 later states; sparse: $sparse_base + 6 x $sparse_delta"
python3 "$here/report.py" "$results" "$sizes"
if (( failures > 0 )); then
  echo "run.sh: $failures check(s) failed: qcow's output differs from qemu-img's" >&2
  exit 1
fi
if (( checks > 0 )); then
  echo "all $checks outputs match qemu-img's (qemu-img compare per layer and export; qemu-img check clean)"
else
  echo "(these sections compare nothing with qemu-img)"
fi
