#!/usr/bin/env python3
"""Seeded compressible data for bench/run.sh's compress section.

Writes SIZE bytes to OUT in 16 KiB pieces, each one of: text-like words (a seeded vocabulary, so repeats at every
distance), a byte run, half random and half zeros, a repeated short record (table-like data), or random bytes
(incompressible). Same arguments, same bytes: the generator is random.Random(seed), nothing else.

usage: compressible.py SEED OUT SIZE
"""
import random
import sys

PIECE = 16384


def main():
    seed, out, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    vocab = [bytes(rng.randrange(97, 123) for _ in range(rng.randrange(1, 12))) for _ in range(2000)]
    with open(out, "wb") as f:
        for _ in range(size // PIECE):
            kind = rng.randrange(10)
            if kind < 4:
                words = []
                n = 0
                while n < PIECE:
                    w = vocab[min(int(rng.expovariate(1 / 150)), len(vocab) - 1)]
                    words.append(w)
                    n += len(w) + 1
                piece = b" ".join(words)[:PIECE]
            elif kind < 5:
                piece = bytes([rng.randrange(256)]) * PIECE
            elif kind < 7:
                piece = rng.randbytes(PIECE // 2) + bytes(PIECE // 2)
            elif kind < 9:
                record = rng.randbytes(rng.randrange(8, 64))
                piece = b"".join(record[:-4] + rng.randrange(1 << 32).to_bytes(4, "little")
                                 for _ in range(PIECE // len(record) + 1))[:PIECE]
            else:
                piece = rng.randbytes(PIECE)
            f.write(piece)


if __name__ == "__main__":
    main()
