#!/usr/bin/env python3
"""Prints the table of a bench/run.sh run from RESULTS (measure.py lines) and SIZES (label, output bytes)."""
import statistics
import sys


def fmt_bytes(n):
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


def main():
    rows = {}
    order = []
    with open(sys.argv[1]) as f:
        for line in f:
            label, wall, rchar, wchar, wbytes, rss = line.rstrip("\n").split("\t")
            if label not in rows:
                rows[label] = []
                order.append(label)
            rows[label].append((float(wall), int(rchar), int(wchar), int(wbytes), int(rss)))
    sizes = {}
    with open(sys.argv[2]) as f:
        for line in f:
            label, n = line.rstrip("\n").split("\t")
            sizes[label] = int(n)
    med = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}

    print()
    print("| what | runs | median wall | min .. max | read (syscalls) | written (syscalls) | written to storage | peak RSS | output size |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k in order:
        v = rows[k]
        walls = [r[0] for r in v]
        print(f"| {k} | {len(v)} | {med[k]:.2f} s | {min(walls):.2f} .. {max(walls):.2f} s "
              f"| {fmt_bytes(statistics.median(r[1] for r in v))} | {fmt_bytes(statistics.median(r[2] for r in v))} "
              f"| {fmt_bytes(statistics.median(r[3] for r in v))} | {max(r[4] for r in v) / 1024:.0f} MiB "
              f"| {fmt_bytes(sizes[k]) if k in sizes else '-'} |")
    print()

    def ratio(text, a, b):
        if a in med and b in med and med[b] > 0:
            print(f"- {text}: {med[a] / med[b]:.2f}x")

    ratio("linearize: stock pipeline time / qcow linearize time (speedup; target at least 15x)", "chain/stock", "chain/qcow")
    ratio("linearize: qcow linearize time / copy floor time (target at most 1.5x)", "chain/qcow", "chain/copy")
    ratio("linearize: baseline build time / this build time", "chain/qcow-baseline", "chain/qcow")
    ratio("export: baseline build time / this build time", "export/qcow-baseline", "export/qcow")
    ratio("export: qemu-img convert -l time / qcow convert -l time (speedup)", "export/qemu-img", "export/qcow")
    ratio("reflink (XFS): qcow convert -l time / qemu-img convert -C -l time (target at most 2x)", "reflink/qcow-convert", "reflink/qemu-img-C")
    ratio("reflink (XFS): qcow linearize time / hashing the sources once (target at most 1x)", "reflink/qcow-linearize", "reflink/hash-sources")
    ratio("reflink (XFS): baseline build time / this build time", "reflink/qcow-linearize-baseline", "reflink/qcow-linearize")
    ratio("compress: qemu-img convert -c time / qcow convert -c time (speedup)", "compress/qemu-img", "compress/qcow")
    ratio("compress, one core: qemu-img time / qcow time (speedup)", "compress/qemu-img-1-core", "compress/qcow-1-core")
    if "compress/source" in sizes:
        for tool in ("qemu-img", "qcow"):
            if f"compress/{tool}" in sizes:
                print(f"- compress, {tool}: output / source size {sizes[f'compress/{tool}'] / sizes['compress/source']:.4f}")
    sparse = sorted({k.split("/")[0] for k in rows if k.startswith("sparse-")},
                    key=lambda s: int(__import__("subprocess").check_output(["numfmt", "--from=iec", s[7:]])))
    for i, tool in ((0, "stock"), (1, "qcow")):
        if len(sparse) >= 2:
            ratio(f"sparse chain, {tool}: time at {sparse[-1][7:]} / time at {sparse[0][7:]} virtual",
                  f"{sparse[-1]}/{tool}", f"{sparse[0]}/{tool}")
    for s in sparse:
        ratio(f"{s}: stock time / qcow time (speedup)", f"{s}/stock", f"{s}/qcow")
    for k in order:
        if k.startswith("mem/"):
            print(f"- {k}: peak RSS {max(r[4] for r in rows[k]) / 1024:.0f} MiB (target < 256 MiB)")


if __name__ == "__main__":
    main()
