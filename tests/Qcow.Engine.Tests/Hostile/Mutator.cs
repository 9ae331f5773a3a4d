using System.Buffers.Binary;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// Seeded mutations of a qcow2 file's metadata, after qemu's tests/image-fuzzer: bit flips and rewrites of header
/// fields, extensions, L1/L2 entries, refcount table and blocks, snapshot table entries; sometimes a truncation.
/// Each mutation returns a description so a failure can be reproduced by hand.
/// </summary>
public static class Mutator
{
    /// <summary>Applies one to three mutations to <paramref name="bytes"/>; returns the (possibly shorter) result.</summary>
    public static byte[] Mutate(byte[] bytes, Random random, List<string> log)
    {
        int count = 1 + random.Next(3);
        for (int i = 0; i < count; i++)
        {
            var layout = Layout.Parse(bytes);
            int pick = random.Next(100);
            if (pick < 4)
            {
                int length = random.Next(bytes.Length);
                log.Add($"truncate to {length}");
                return bytes[..length];
            }
            if (pick < 34) RewriteHeaderField(bytes, layout, random, log);
            else if (pick < 40) FlipBits(bytes, layout.Regions[0] with { Offset = 4, Length = Math.Min(layout.ClusterSize, bytes.Length) - 4 }, random, log);
            else RewriteEntry(bytes, layout, random, log);
        }
        return bytes;
    }

    private static void RewriteHeaderField(byte[] bytes, Layout layout, Random random, List<string> log)
    {
        // Not the magic: without it the file is a raw image, which is no damage to a qcow2 reader.
        var (name, offset, width) = Layout.HeaderFields[1 + random.Next(Layout.HeaderFields.Count - 1)];
        if (offset + width > bytes.Length) return;
        ulong old = Read(bytes, offset, width);
        ulong value = random.Next(3) == 0 ? old ^ (1UL << random.Next(width * 8)) : Interesting(old, layout, random);
        Write(bytes, offset, width, value);
        log.Add($"header {name} 0x{old:x} -> 0x{value:x}");
    }

    private static void RewriteEntry(byte[] bytes, Layout layout, Random random, List<string> log)
    {
        // Weight the structures: L2 entries and L1 entries carry most of the mapping.
        var regions = layout.Regions.Where(r => r.Name != "header").ToList();
        if (regions.Count == 0) return;
        var l2 = regions.Where(r => r.Name.StartsWith("L2", StringComparison.Ordinal)).ToList();
        var region = l2.Count > 0 && random.Next(3) == 0 ? l2[random.Next(l2.Count)] : regions[random.Next(regions.Count)];
        if (region.Name.StartsWith("L2", StringComparison.Ordinal) && random.Next(2) == 0)
        {
            // Hit an entry that is in use, where damage matters.
            var used = layout.L2Entries.Where(e => e.EntryOffset >= region.Offset && e.EntryOffset < region.Offset + region.Length).ToList();
            if (used.Count > 0)
            {
                long at = used[random.Next(used.Count)].EntryOffset + (layout.L2EntrySize == 16 && random.Next(2) == 0 ? 8 : 0);
                RewriteWord(bytes, at, region.Name, layout, random, log);
                return;
            }
        }
        if (random.Next(4) == 0)
        {
            FlipBits(bytes, region, random, log);
            return;
        }
        int entry = Math.Max(8, region.EntrySize);
        long slots = Math.Max(1, region.Length / entry);
        long offset = region.Offset + random.NextInt64(slots) * entry;
        // Snapshot entries and extensions have fields of several widths: pick one of the fixed part.
        if (region.Name == "snapshot table" && layout.SnapshotEntries.Count > 0)
        {
            long start = layout.SnapshotEntries[random.Next(layout.SnapshotEntries.Count)];
            (int at, int width)[] fields = [(0, 8), (8, 4), (12, 2), (14, 2), (32, 4), (36, 4), (40, 8), (48, 8)];
            var (fAt, fWidth) = fields[random.Next(fields.Length)];
            RewriteField(bytes, start + fAt, fWidth, $"snapshot entry at 0x{start:x} +{fAt}", layout, random, log);
            return;
        }
        if (region.Name.StartsWith("extension", StringComparison.Ordinal))
        {
            RewriteField(bytes, region.Offset + (random.Next(2) == 0 ? 0 : 4), 4, region.Name, layout, random, log);
            return;
        }
        RewriteWord(bytes, offset, region.Name, layout, random, log);
    }

    private static void RewriteWord(byte[] bytes, long at, string what, Layout layout, Random random, List<string> log) =>
        RewriteField(bytes, at, 8, what, layout, random, log);

    private static void RewriteField(byte[] bytes, long at, int width, string what, Layout layout, Random random, List<string> log)
    {
        if (at + width > bytes.Length) return;
        ulong old = Read(bytes, at, width);
        ulong value = random.Next(3) switch
        {
            0 => old ^ (1UL << random.Next(width * 8)),
            1 => (old & 0xff00_0000_0000_01ffUL) | (Interesting(old, layout, random) & 0x00ff_ffff_ffff_fe00UL),
            _ => Interesting(old, layout, random),
        };
        if (width < 8) value &= (1UL << (width * 8)) - 1;
        Write(bytes, at, width, value);
        log.Add($"{what} at 0x{at:x} 0x{old:x} -> 0x{value:x}");
    }

    private static void FlipBits(byte[] bytes, Layout.Region region, Random random, List<string> log)
    {
        long length = Math.Min(region.Length, bytes.Length - region.Offset);
        if (length <= 0) return;
        int flips = 1 + random.Next(4);
        for (int i = 0; i < flips; i++)
        {
            long at = region.Offset + random.NextInt64(length);
            int bit = random.Next(8);
            bytes[at] ^= (byte)(1 << bit);
            log.Add($"flip bit {bit} of byte 0x{at:x} ({region.Name})");
        }
    }

    /// <summary>Values that tend to break parsers: limits, sizes of this file, offsets of its other tables.</summary>
    private static ulong Interesting(ulong old, Layout layout, Random random)
    {
        long length = layout.Bytes.Length;
        long cs = layout.ClusterSize;
        return random.Next(16) switch
        {
            0 => 0,
            1 => 1,
            2 => ulong.MaxValue,
            3 => 0x8000_0000_0000_0000UL,
            4 => 0xffff_ffffUL,
            5 => 0x7fff_ffffUL,
            6 => (ulong)length,
            7 => (ulong)(length & ~(cs - 1)),
            8 => (ulong)(length & ~(cs - 1)) + (ulong)cs,
            9 => old + 512,
            10 => old + (ulong)cs,
            11 => old - (ulong)cs,
            12 => (ulong)layout.Regions[random.Next(layout.Regions.Count)].Offset,
            13 => (ulong)random.NextInt64(),
            14 => 1UL << random.Next(64),
            _ => (ulong)random.Next(0, 70000),
        };
    }

    private static ulong Read(byte[] b, long at, int width) => width switch
    {
        1 => b[at],
        2 => BinaryPrimitives.ReadUInt16BigEndian(b.AsSpan((int)at)),
        4 => BinaryPrimitives.ReadUInt32BigEndian(b.AsSpan((int)at)),
        _ => BinaryPrimitives.ReadUInt64BigEndian(b.AsSpan((int)at)),
    };

    private static void Write(byte[] b, long at, int width, ulong v)
    {
        switch (width)
        {
            case 1: b[at] = (byte)v; break;
            case 2: BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan((int)at), (ushort)v); break;
            case 4: BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan((int)at), (uint)v); break;
            default: BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan((int)at), v); break;
        }
    }
}
