#!/usr/bin/env python3
"""Seeded write generator for bench/run.sh.

Writes random-data files into DATADIR and prints qemu-io commands (one per line) that apply them, plus some zero
writes. Same arguments, same bytes: the generator is random.Random(seed), nothing else.

usage: gen.py SEED DATADIR VIRTUAL_BYTES TOTAL_BYTES MIN_WRITE MAX_WRITE ZERO_PERCENT
"""
import os
import random
import sys

ALIGN = 4096


def main():
    seed, datadir, virtual, total, wmin, wmax, zero_pct = sys.argv[1:8]
    seed, virtual, total, wmin, wmax, zero_pct = int(seed), int(virtual), int(total), int(wmin), int(wmax), int(zero_pct)
    rng = random.Random(seed)
    os.makedirs(datadir, exist_ok=True)
    done = 0
    n = 0
    out = []
    while done < total:
        length = rng.randrange(wmin // ALIGN, wmax // ALIGN + 1) * ALIGN
        length = min(length, max(ALIGN, (total - done + ALIGN - 1) // ALIGN * ALIGN))
        offset = rng.randrange(0, (virtual - length) // ALIGN + 1) * ALIGN
        if rng.randrange(100) < zero_pct:
            out.append(f"write -q -z {offset} {length}")
        else:
            path = os.path.join(datadir, f"w{n:06d}.bin")
            with open(path, "wb") as f:
                f.write(rng.randbytes(length))
            out.append(f"write -q -s {path} {offset} {length}")
            n += 1
        done += length
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
