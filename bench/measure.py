#!/usr/bin/env python3
"""Runs a command and appends one line to RESULTS: label, wall seconds, bytes read and written through system calls
(rchar/wchar of the whole process tree, from /proc/self/io: reaped children add theirs to their parent), bytes that
went to storage (write_bytes), and the peak RSS of the largest process in the tree (KiB).

usage: measure.py RESULTS LABEL -- COMMAND [ARGS...]
"""
import resource
import subprocess
import sys
import time


def io():
    d = {}
    with open("/proc/self/io") as f:
        for line in f:
            k, v = line.split(":")
            d[k.strip()] = int(v)
    return d


def main():
    results, label = sys.argv[1], sys.argv[2]
    cmd = sys.argv[sys.argv.index("--") + 1:]
    before = io()
    t0 = time.monotonic()
    rc = subprocess.run(cmd).returncode
    wall = time.monotonic() - t0
    after = io()
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if rc != 0:
        print(f"measure.py: '{label}' failed with exit code {rc}", file=sys.stderr)
        sys.exit(rc)
    d = {k: after[k] - before[k] for k in before}
    with open(results, "a") as f:
        f.write(f"{label}\t{wall:.4f}\t{d['rchar']}\t{d['wchar']}\t{d['write_bytes']}\t{rss}\n")


if __name__ == "__main__":
    main()
