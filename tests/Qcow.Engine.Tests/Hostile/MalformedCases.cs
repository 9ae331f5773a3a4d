using Qcow.Testing;
using System.IO.Compression;
using static Qcow.Engine.Tests.Hostile.HostileImages;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// One malformed image: a base image, the damage done to it, and the header field or table the error must name.
/// <paramref name="Fields"/> lists acceptable names (any one must appear in the message).
/// </summary>
public sealed record MalformedCase(string Name, string Iotest, string Base, Action<string, Layout> Damage, params string[] Fields)
{
    /// <summary>
    /// Set for a deliberate difference from qemu-img (listed in the README): why we refuse to read a state qemu reads.
    /// </summary>
    public string? Deliberate { get; init; }

    /// <summary>True when only a snapshot table entry is damaged: the current state still reads (as in qemu).</summary>
    public bool OnlySnapshot { get; init; }
}

/// <summary>
/// The corpus, after the categories of qemu-iotests 060 (metadata overlaps), 080 (header and table validation),
/// 112 (refcount widths) and 261 (snapshot table), plus compression and extended L2 cases.
/// </summary>
public static class MalformedCases
{
    /// <summary>Deliberate difference: qemu reads guest data, or an L2 table, from the image's own metadata.</summary>
    public const string InMetadata = "data or an L2 table that lies in metadata is refused; qemu hands the metadata to the guest";
    /// <summary>Deliberate difference: qemu reads zeros past the end of a (truncated) file.</summary>
    public const string PastEnd = "data and tables past the end of the file are refused; qemu reads a truncated image as zeros";

    /// <summary>Deliberate difference: a snapshot whose L1 table does not cover its disk size.</summary>
    public const string ShortL1 = "a snapshot whose L1 table does not cover its disk size is refused, which bounds a read's work by the file's size; qemu reads the rest as unallocated";
    /// <summary>Deliberate difference: one L2 table named by two L1 entries.</summary>
    public const string SharedL2 = "an L2 table named by two L1 entries is refused, which bounds a read's work by the file's size; qemu reads it";
    /// <summary>Deliberate difference: a snapshot whose id or name cannot be trusted.</summary>
    public const string DamagedName = "a snapshot whose id or name is not UTF-8, holds NUL bytes or runs past the end of the file is refused when used; qemu reads it";

    private const ulong Compressed = 1UL << 62;
    private const ulong OffsetMask = 0x00ff_ffff_ffff_fe00UL;

    /// <summary>Every case, by name.</summary>
    public static readonly IReadOnlyList<MalformedCase> All =
    [
        // 080: the header.
        new("header_length_huge", "080", "v3", (p, l) => Put(p, 100, 4, 0xffffffff), "header_length"),
        new("header_length_too_small", "080", "v3", (p, l) => Put(p, 100, 4, 72), "header_length"),
        new("version_4", "080", "v3", (p, l) => Put(p, 4, 4, 4), "version"),
        new("cluster_bits_31", "080", "v3", (p, l) => Put(p, 20, 4, 31), "cluster_bits"),
        new("cluster_bits_8", "080", "v3", (p, l) => Put(p, 20, 4, 8), "cluster_bits"),
        new("crypt_method_aes", "080", "v3", (p, l) => Put(p, 32, 4, 1), "crypt_method"),
        new("size_huge", "080", "v3", (p, l) => Put(p, 24, 8, 1UL << 62), "size", "l1_size"),
        new("extension_length_past_cluster", "080", "v3", (p, l) => Put(p, l.Extensions[0].Offset + 4, 4, 0x10000), "header extension"),
        new("extension_length_huge", "080", "v3", (p, l) => Put(p, l.Extensions[0].Offset + 4, 4, 0xfffffff0), "header extension"),
        new("end_marker_length_past_cluster", "080", "v3", (p, l) => Put(p, EndMarker(l) + 4, 4, 0x10000), "header extension"),
        new("end_marker_length_past_cluster_v2", "080", "v2", (p, l) => Put(p, 76, 4, 0xa0000), "header extension"),
        new("data_file_raw_without_data_file", "080", "v3", (p, l) => Put(p, 88, 8, 2), "autoclear_features"),
        new("backing_file_offset_past_cluster", "080", "v3", (p, l) => { Put(p, 8, 8, 0x10000); Put(p, 16, 4, 8); }, "backing_file_offset"),
        new("backing_file_offset_huge", "080", "v3", (p, l) => { Put(p, 8, 8, ulong.MaxValue - 4); Put(p, 16, 4, 8); }, "backing_file_offset"),
        new("backing_file_size_huge", "080", "v3", (p, l) => { Put(p, 8, 8, 0x200); Put(p, 16, 4, 0xffffffff); }, "backing_file_size"),
        new("unknown_incompatible_bit", "080", "v3", (p, l) => Put(p, 72, 8, 1UL << 5), "incompatible_features"),
        new("unknown_incompatible_bit_63", "080", "v3", (p, l) => Put(p, 72, 8, 1UL << 63), "incompatible_features"),
        new("external_data_bit_without_name", "080", "v3", (p, l) => Put(p, 72, 8, 4), "incompatible_features"),
        new("compression_type_unknown", "080", "v3", (p, l) => { Put(p, 72, 8, 8); Put(p, 104, 1, 7); }, "compression_type"),
        new("compression_type_without_bit", "080", "zstd", (p, l) => Put(p, 72, 8, 0), "compression_type"),
        new("extended_l2_small_clusters", "080", "small", (p, l) => Put(p, 72, 8, 16), "incompatible_features"),

        // 080: L1 and refcount table placement and size.
        new("size_unaligned_past_l1", "080", "small", (p, l) => Put(p, 24, 8, l.U64(24) + 256), "l1_size"),
        new("l1_size_huge", "080", "v3", (p, l) => Put(p, 36, 4, 0x10000000), "l1_size"),
        new("l1_size_0_with_snapshots", "080", "v3", (p, l) => Put(p, 36, 4, 0), "l1_size"),
        new("l1_table_offset_unaligned", "080", "v3", (p, l) => Put(p, 40, 8, l.U64(40) + 512), "l1_table_offset"),
        new("l1_table_offset_past_end", "080", "v3", (p, l) => Put(p, 40, 8, 1UL << 40), "l1_table_offset") { Deliberate = PastEnd },
        new("l1_table_offset_0", "080", "v3", (p, l) => Put(p, 40, 8, 0), "l1_table_offset") { Deliberate = InMetadata },
        new("l1_entry_past_end", "080", "v3", (p, l) => Put(p, (long)l.U64(40), 8, 1UL << 40), "l1_table_offset", "L1 entry") { Deliberate = PastEnd },
        new("l1_entry_unaligned", "080", "v3", (p, l) => Put(p, (long)l.U64(40), 8, (l.U64((long)l.U64(40)) & OffsetMask) + 512), "l1_table_offset", "L1 entry"),
        new("refcount_table_huge", "080", "v3", (p, l) => Put(p, 56, 4, 0xffffff), "refcount_table_clusters"),
        new("refcount_table_empty", "080", "v3", (p, l) => Put(p, 56, 4, 0), "refcount_table_clusters"),
        new("refcount_table_unaligned", "080", "v3", (p, l) => Put(p, 48, 8, l.U64(48) + 8), "refcount_table_offset"),

        // 112: refcount widths.
        new("refcount_order_7", "112", "v3", (p, l) => Put(p, 96, 4, 7), "refcount_order"),
        new("refcount_order_huge", "112", "v3", (p, l) => Put(p, 96, 4, 0xffffffff), "refcount_order"),

        // 261 and 080: the snapshot table.
        new("nb_snapshots_huge", "080", "v3", (p, l) => Put(p, 60, 4, 0xffffffff), "nb_snapshots"),
        new("nb_snapshots_past_end", "261", "v3", (p, l) => Put(p, 60, 4, 60000), "snapshots_offset", "snapshot table"),
        new("snapshots_offset_past_end", "080", "v3", (p, l) => Put(p, 64, 8, 1UL << 40), "snapshots_offset") { Deliberate = PastEnd, OnlySnapshot = true },
        new("snapshots_offset_unaligned", "080", "v3", (p, l) => Put(p, 64, 8, l.U64(64) + 8), "snapshots_offset"),
        new("snapshot_l1_size_huge", "080", "v3", (p, l) => Put(p, l.SnapshotEntries[0] + 8, 4, 0xffffffff), "l1_size") { OnlySnapshot = true },
        new("snapshot_l1_size_0", "080", "v3", (p, l) => Put(p, l.SnapshotEntries[0] + 8, 4, 0), "l1_size") { Deliberate = ShortL1, OnlySnapshot = true },
        new("snapshot_l1_offset_unaligned", "080", "v3", (p, l) => Put(p, l.SnapshotEntries[0], 8, l.U64(l.SnapshotEntries[0]) + 8), "l1_table_offset") { OnlySnapshot = true },
        new("snapshot_l1_offset_past_end", "080", "v3", (p, l) => Put(p, l.SnapshotEntries[0], 8, 1UL << 50), "l1_table_offset") { Deliberate = PastEnd, OnlySnapshot = true },
        new("snapshot_extra_data_huge", "261", "v3", (p, l) => Put(p, l.SnapshotEntries[0] + 36, 4, 0x10000), "extra_data_size"),

        new("snapshot_name_past_end", "261", "v3", (p, l) => Put(p, l.SnapshotEntries[0] + 14, 2, 0xffff), "name_size", "name") { Deliberate = DamagedName, OnlySnapshot = true },
        new("snapshots_offset_unaligned_without_snapshots", "080", "v3", (p, l) => { Put(p, 60, 4, 0); Put(p, 64, 8, l.U64(64) + 8); }, "snapshots_offset"),
        new("extension_past_backing_file_offset", "080", "v3", (p, l) => { Put(p, 8, 8, (ulong)l.Extensions[0].Offset + 12); Put(p, 16, 4, 0); }, "header extension"),

        // 060: L2 entries that point outside the file or into metadata.
        new("l2_entry_past_end", "060", "v3", (p, l) => Put(p, FirstData(l), 8, 1UL << 40), "L2 entry") { Deliberate = PastEnd },
        new("l2_entry_unaligned", "060", "v3", (p, l) => Put(p, FirstData(l), 8, l.U64(FirstData(l)) + 512), "L2 entry"),
        new("l2_entry_onto_l1", "060", "v3", (p, l) => PointFirstData(p, l, l.U64(40)), "L2 entry") { Deliberate = InMetadata },
        new("l2_entry_onto_refcount_table", "060", "v3", (p, l) => PointFirstData(p, l, l.U64(48)), "L2 entry") { Deliberate = InMetadata },
        new("l2_entry_onto_refcount_block", "060", "v3", (p, l) => PointFirstData(p, l, (ulong)l.Named("refcount block").First().Offset), "L2 entry") { Deliberate = InMetadata },
        new("l2_entry_onto_l2_table", "060", "v3", (p, l) => PointFirstData(p, l, (ulong)l.Named("L2").First().Offset), "lies in the L2 table") { Deliberate = InMetadata },
        new("l2_entry_onto_snapshot_table", "060", "v3", (p, l) => PointFirstData(p, l, l.U64(64)), "L2 entry") { Deliberate = InMetadata },
        new("l1_entry_onto_refcount_table", "060", "v3", (p, l) => Put(p, (long)l.U64(40), 8, l.U64(48)), "L1 entry", "l1_table_offset") { Deliberate = InMetadata },
        new("l1_entry_onto_header", "060", "v3", (p, l) => Put(p, (long)l.U64(40), 8, 0x200), "L1 entry", "l1_table_offset"),
        new("l1_entry_onto_l1_at_end_of_file", "060", "v3", (p, l) => { Put(p, (long)l.U64(40), 8, l.U64(40)); Truncate(p, (long)l.U64(40) + 8 * l.U32(36)); }, "lies in the active L1 table") { Deliberate = InMetadata },
        new("l1_entries_share_an_l2_table", "060", "v3", (p, l) => ShareL2OverWholeL1(p, l), "L1 entries", "l1_table_offset") { Deliberate = SharedL2 },
        new("zero_flag_in_v2", "060", "v2", (p, l) => Put(p, FirstData(l), 8, l.U64(FirstData(l)) | 1), "L2 entry"),

        // Compressed clusters.
        new("compressed_offset_past_end", "060", "v3", (p, l) => Put(p, FirstCompressed(l), 8, Compressed | (1UL << 40)), "compressed cluster") { Deliberate = PastEnd },
        new("compressed_onto_header", "060", "v3", (p, l) => Put(p, FirstCompressed(l), 8, Compressed | 0x100), "compressed cluster") { Deliberate = InMetadata },
        new("deflate_corrupt", "compression", "v3", (p, l) => CorruptStream(p, l), "compressed cluster"),
        new("deflate_short", "compression", "v3", (p, l) => ReplaceStream(p, l, Deflate(new byte[1000])), "compressed cluster"),
        new("zstd_corrupt", "compression", "zstd", (p, l) => CorruptStream(p, l), "compressed cluster"),
        new("zstd_long", "compression", "zstd", (p, l) => ReplaceStream(p, l, Zstd(new byte[128 << 10])), "compressed cluster"),
        new("zstd_short", "compression", "zstd", (p, l) => ReplaceStream(p, l, Zstd(new byte[1000])), "compressed cluster"),

        // Extended L2 bitmaps qemu calls invalid.
        new("xl2_allocated_and_zero", "xl2", "xl2", (p, l) => Put(p, FirstData(l) + 8, 8, 1UL | (1UL << 32)), "L2 entry"),
        new("xl2_allocated_on_unallocated", "xl2", "xl2", (p, l) => { Put(p, FirstData(l), 8, 0); Put(p, FirstData(l) + 8, 8, 1); }, "L2 entry"),

        // Truncated files.
        new("truncated_to_50_bytes", "080", "v3", (p, l) => Truncate(p, 50), "header"),
        new("truncated_to_100_bytes", "080", "v3", (p, l) => Truncate(p, 100), "header_length"),
        new("truncated_to_first_cluster", "080", "v3", (p, l) => Truncate(p, l.ClusterSize), "l1_table_offset", "refcount_table_offset") { Deliberate = PastEnd },
        new("truncated_mid_l2", "080", "small", (p, l) => Truncate(p, l.Named("L2").Max(r => r.Offset) + 100), "l1_table_offset", "L1 entry", "snapshot") { Deliberate = PastEnd },
    ];

    /// <summary>
    /// Damage qemu reads through, and so do we: the bytes read must be qemu's (some of these are corruptions that
    /// check must count as qemu-img check does).
    /// </summary>
    public static readonly IReadOnlyList<MalformedCase> Readable =
    [
        new("unknown_compatible_bit", "080", "v3", (p, l) => Put(p, 80, 8, 1UL << 7)),
        new("unknown_autoclear_bit", "080", "v3", (p, l) => Put(p, 88, 8, 1UL << 9)),
        new("dirty_bit", "080", "v3", (p, l) => Put(p, 72, 8, 1)),
        new("corrupt_bit", "080", "v3", (p, l) => Put(p, 72, 8, 2)),
        new("header_length_105", "080", "v3", (p, l) => Put(p, 100, 4, 105)),
        new("unknown_header_extension", "080", "v3", (p, l) => Put(p, l.Extensions[0].Offset, 4, 0x12345678)),
        new("deflate_longer_than_cluster", "compression", "v3", (p, l) => ReplaceStream(p, l, Deflate(Filled(2 * l.ClusterSize, 0x66)))),
        new("compressed_stream_cut_at_end_of_file", "compression", "v3", (p, l) => { }),
        new("xl2_partial_subclusters", "xl2", "xl2", (p, l) => { }),
        new("refcounts_wrong", "060", "v3", (p, l) => Put(p, l.Named("refcount block").First().Offset, 2, 0)),
        new("l1_entry_reserved_bits", "080", "v3", (p, l) => Put(p, (long)l.U64(40), 8, l.U64((long)l.U64(40)) | 2)),
        new("compressed_with_copied_flag", "060", "v3", (p, l) => Put(p, FirstCompressed(l), 8, l.U64(FirstCompressed(l)) | (1UL << 63))),
        new("refcount_table_entry_unaligned", "060", "v3", (p, l) => Put(p, (long)l.U64(48), 8, l.U64((long)l.U64(48)) + 512)),
        new("snapshots_offset_past_end_without_snapshots", "080", "v3", (p, l) => { Put(p, 60, 4, 0); Put(p, 64, 8, 1UL << 40); }),
        new("snapshot_extra_data_too_small_v3", "261", "v3", (p, l) => ShrinkExtraData(p, l, 8)),
        new("refcount_table_past_end", "080", "v3", (p, l) => Put(p, 48, 8, 1UL << 40)),
        new("botched_v3", "261", "v2", (p, l) => BotchV3(p, l)),
        new("l2_entry_reserved_bits", "060", "v3", (p, l) => Put(p, FirstData(l), 8, l.U64(FirstData(l)) | 0x100)),
        new("xl2_bitmap_on_compressed", "xl2", "xl2", (p, l) => Put(p, FirstCompressed(l) + 8, 8, 1UL << 32)),
        new("xl2_zero_flag_reserved", "xl2", "xl2", (p, l) => Put(p, FirstData(l), 8, l.U64(FirstData(l)) | 1)),
    ];

    /// <summary>The names, for xunit.</summary>
    public static IEnumerable<object[]> Names => All.Select(c => new object[] { c.Name });

    /// <summary>The offset of the first L2 entry that maps an uncompressed data cluster in the active L1.</summary>
    public static long FirstData(Layout l) => l.L2Entries.First(e => (e.Word & Compressed) == 0 && (e.Word & OffsetMask) != 0).EntryOffset;

    /// <summary>The offset of the first compressed L2 entry.</summary>
    public static long FirstCompressed(Layout l) => l.L2Entries.First(e => (e.Word & Compressed) != 0).EntryOffset;

    /// <summary>
    /// iotest 261's "botched v3": a version 2 image with three snapshots whose entries carry 0, 50 (with unknown
    /// data) and 8 bytes of extra data, turned into version 3 by its header fields alone. Entries 0 and 2 then have
    /// less than the 16 bytes version 3 requires: qemu reads all three snapshots, and check counts two corruptions.
    /// </summary>
    private static void BotchV3(string path, Layout l)
    {
        Qemu.Img("snapshot", "-c", "sn1", path);
        Qemu.Img("snapshot", "-c", "sn2", path);
        l = Layout.Of(path);
        var table = new List<byte>();
        uint[] extraSizes = [0, 50, 8];
        for (int i = 0; i < 3; i++)
        {
            long e = l.SnapshotEntries[i];
            uint extra = l.U32(e + 36);
            int idName = l.U16(e + 12) + l.U16(e + 14);
            var entry = l.Bytes.AsSpan((int)e, 40).ToArray();
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(entry.AsSpan(36), extraSizes[i]);
            var extraData = new byte[extraSizes[i]];
            l.Bytes.AsSpan((int)(e + 40), (int)Math.Min(extra, extraSizes[i])).CopyTo(extraData);
            if (extraSizes[i] > 24) "very important data"u8.CopyTo(extraData.AsSpan(24));
            table.AddRange(entry);
            table.AddRange(extraData);
            table.AddRange(l.Bytes.AsSpan((int)(e + 40 + extra), idName).ToArray());
            while (table.Count % 8 != 0) table.Add(0);
        }
        PutBytes(path, l.SnapshotEntries[0], table.ToArray());
        Put(path, 4, 4, 3);
        Put(path, 96, 4, 4);
        Put(path, 100, 4, 104);
    }

    /// <summary>Cuts the first snapshot entry's extra data to <paramref name="size"/> bytes; id and name move up.</summary>
    private static void ShrinkExtraData(string path, Layout l, uint size)
    {
        long e = l.SnapshotEntries[0];
        int idName = l.U16(e + 12) + l.U16(e + 14);
        uint extra = l.U32(e + 36);
        var idAndName = l.Bytes.AsSpan((int)(e + 40 + extra), idName).ToArray();
        Put(path, e + 36, 4, size);
        PutBytes(path, e + 40 + size, idAndName);
    }

    private static byte[] Filled(int length, byte value)
    {
        var b = new byte[length];
        Array.Fill(b, value);
        return b;
    }

    /// <summary>A 4 TiB disk whose 8192 L1 entries all name the one L2 table: densely mapped in appearance only.</summary>
    private static void ShareL2OverWholeL1(string path, Layout l)
    {
        ulong l1 = l.U64(40);
        ulong l2 = l.U64((long)l1);
        int entries = l.ClusterSize / 8;
        Put(path, 36, 4, (ulong)entries);
        Put(path, 24, 8, (ulong)entries * (ulong)(l.ClusterSize / 8) * (ulong)l.ClusterSize);
        for (int i = 0; i < entries; i++) Put(path, (long)l1 + i * 8, 8, l2);
    }

    /// <summary>The offset of the header extension end marker (after the last extension).</summary>
    private static long EndMarker(Layout l)
    {
        var e = l.Extensions[^1];
        return e.Offset + 8 + ((e.Length + 7L) & ~7L);
    }

    private static void PointFirstData(string path, Layout l, ulong host)
    {
        long at = FirstData(l);
        Put(path, at, 8, (l.U64(at) & ~OffsetMask) | host);
    }

    /// <summary>Where the first compressed stream lies (offset and length from its descriptor).</summary>
    private static (long Offset, long Length) Stream(Layout l)
    {
        ulong word = l.U64(FirstCompressed(l));
        int x = 62 - (l.ClusterBits - 8);
        long offset = (long)(word & ((1UL << x) - 1));
        long sectors = (long)((word & ~(3UL << 62)) >> x) + 1;
        long length = Math.Min(sectors * 512 - (offset & 511), l.Bytes.Length - offset);
        return (offset, length);
    }

    private static void CorruptStream(string path, Layout l)
    {
        var (offset, length) = Stream(l);
        var junk = new byte[length];
        new Random(7).NextBytes(junk);
        PutBytes(path, offset, junk);
    }

    /// <summary>Puts <paramref name="stream"/> in place of the first compressed stream, with a descriptor that covers it.</summary>
    public static void ReplaceStream(string path, Layout l, byte[] stream)
    {
        long entry = FirstCompressed(l);
        ulong word = l.U64(entry);
        int x = 62 - (l.ClusterBits - 8);
        long offset = (long)(word & ((1UL << x) - 1));
        long sectors = (stream.Length + (offset & 511) + 511) / 512;
        Put(path, entry, 8, (word & ~((1UL << 62) - 1)) | ((ulong)(sectors - 1) << x) | (ulong)offset);
        PutBytes(path, offset, stream);
    }

    /// <summary>Raw deflate of <paramref name="data"/>.</summary>
    public static byte[] Deflate(byte[] data)
    {
        var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) d.Write(data);
        return ms.ToArray();
    }

    /// <summary>One zstd frame of <paramref name="data"/>.</summary>
    public static byte[] Zstd(byte[] data)
    {
        using var c = new ZstdSharp.Compressor(3);
        return c.Wrap(data).ToArray();
    }
}
