using System.Buffers.Binary;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// Where the metadata of a qcow2 file lies, parsed here without the engine (a test must not trust the code it
/// attacks): header fields, header extensions, L1/L2 tables, refcount structures, snapshot table and snapshot L1s.
/// Tolerant: whatever cannot be parsed is left out, so it works on already-mutated files too.
/// </summary>
public sealed class Layout
{
    /// <summary>A named byte range of the file.</summary>
    public readonly record struct Region(string Name, long Offset, long Length, int EntrySize);

    /// <summary>Offsets of the header fields (spec: "Header"), with their widths.</summary>
    public static readonly IReadOnlyList<(string Name, int Offset, int Width)> HeaderFields =
    [
        ("magic", 0, 4), ("version", 4, 4), ("backing_file_offset", 8, 8), ("backing_file_size", 16, 4),
        ("cluster_bits", 20, 4), ("size", 24, 8), ("crypt_method", 32, 4), ("l1_size", 36, 4),
        ("l1_table_offset", 40, 8), ("refcount_table_offset", 48, 8), ("refcount_table_clusters", 56, 4),
        ("nb_snapshots", 60, 4), ("snapshots_offset", 64, 8), ("incompatible_features", 72, 8),
        ("compatible_features", 80, 8), ("autoclear_features", 88, 8), ("refcount_order", 96, 4),
        ("header_length", 100, 4), ("compression_type", 104, 1),
    ];

    private Layout(byte[] bytes) => Bytes = bytes;

    /// <summary>The file's bytes.</summary>
    public byte[] Bytes { get; }
    /// <summary>log2 of the cluster size.</summary>
    public int ClusterBits { get; private set; }
    /// <summary>Bytes per cluster.</summary>
    public int ClusterSize => 1 << ClusterBits;
    /// <summary>Bytes per L2 entry (16 with extended L2).</summary>
    public int L2EntrySize { get; private set; } = 8;
    /// <summary>Length of the header (v2: 72).</summary>
    public int HeaderLength { get; private set; }
    /// <summary>Header extensions: (type, offset of the 8-byte type/length pair, data length).</summary>
    public List<(uint Type, long Offset, uint Length)> Extensions { get; } = [];
    /// <summary>Every table found: header, extensions, L1s, L2s, refcount table and blocks, snapshot table.</summary>
    public List<Region> Regions { get; } = [];
    /// <summary>Offsets of snapshot table entries.</summary>
    public List<long> SnapshotEntries { get; } = [];
    /// <summary>(offset of the L2 entry, its first word) for every allocated L2 entry of every L2 table found.</summary>
    public List<(long EntryOffset, ulong Word)> L2Entries { get; } = [];

    /// <summary>Big-endian field readers over <see cref="Bytes"/>.</summary>
    public ulong U64(long at) => at + 8 <= Bytes.Length ? BinaryPrimitives.ReadUInt64BigEndian(Bytes.AsSpan((int)at)) : 0;
    /// <inheritdoc cref="U64"/>
    public uint U32(long at) => at + 4 <= Bytes.Length ? BinaryPrimitives.ReadUInt32BigEndian(Bytes.AsSpan((int)at)) : 0;
    /// <inheritdoc cref="U64"/>
    public ushort U16(long at) => at + 2 <= Bytes.Length ? BinaryPrimitives.ReadUInt16BigEndian(Bytes.AsSpan((int)at)) : (ushort)0;

    /// <summary>Parses <paramref name="path"/>.</summary>
    public static Layout Of(string path) => Parse(File.ReadAllBytes(path));

    /// <summary>Parses <paramref name="bytes"/> (kept, not copied).</summary>
    public static Layout Parse(byte[] bytes)
    {
        var l = new Layout(bytes);
        l.ClusterBits = (int)Math.Clamp(l.U32(20), 9, 21);
        int version = (int)l.U32(4);
        l.HeaderLength = version >= 3 ? (int)Math.Min(l.U32(100), (uint)l.ClusterSize) : 72;
        if (version >= 3 && (l.U64(72) & 16) != 0) l.L2EntrySize = 16;
        l.Regions.Add(new Region("header", 0, l.HeaderLength, 1));
        l.ParseExtensions();
        l.AddL1("active L1", l.U64(40), l.U32(36));
        long rt = (long)l.U64(48);
        long rtLength = (long)l.U32(56) * l.ClusterSize;
        if (l.Inside(rt, rtLength))
        {
            l.Regions.Add(new Region("refcount table", rt, rtLength, 8));
            for (long i = 0; i < rtLength / 8; i++)
            {
                long block = (long)(l.U64(rt + i * 8) & 0x00ff_ffff_ffff_fe00UL);
                if (block != 0 && l.Inside(block, l.ClusterSize)) l.Regions.Add(new Region($"refcount block {i}", block, l.ClusterSize, 1));
            }
        }
        l.ParseSnapshots();
        return l;
    }

    /// <summary>Regions whose name starts with <paramref name="prefix"/>.</summary>
    public IEnumerable<Region> Named(string prefix) => Regions.Where(r => r.Name.StartsWith(prefix, StringComparison.Ordinal));

    private bool Inside(long offset, long length) => offset > 0 && length > 0 && offset + length <= Bytes.Length;

    private void ParseExtensions()
    {
        long at = HeaderLength;
        for (int n = 0; n < 64 && at + 8 <= Math.Min(ClusterSize, Bytes.Length); n++)
        {
            uint type = U32(at), length = U32(at + 4);
            if (type == 0) break;
            Extensions.Add((type, at, length));
            Regions.Add(new Region($"extension 0x{type:x8}", at, 8 + Math.Min(length, (uint)ClusterSize), 4));
            at += 8 + ((length + 7L) & ~7L);
        }
    }

    private void AddL1(string name, ulong offset, uint entries)
    {
        long length = entries * 8L;
        if (!Inside((long)offset, length) || length > 1 << 20) return;
        Regions.Add(new Region(name, (long)offset, length, 8));
        for (long i = 0; i < entries; i++)
        {
            long l2 = (long)(U64((long)offset + i * 8) & 0x00ff_ffff_ffff_fe00UL);
            if (l2 == 0 || !Inside(l2, ClusterSize) || Regions.Any(r => r.Name.StartsWith("L2", StringComparison.Ordinal) && r.Offset == l2)) continue;
            Regions.Add(new Region($"L2 table of {name} entry {i}", l2, ClusterSize, L2EntrySize));
            for (long j = 0; j < ClusterSize / L2EntrySize; j++)
            {
                long at = l2 + j * L2EntrySize;
                ulong word = U64(at);
                if (word != 0) L2Entries.Add((at, word));
            }
        }
    }

    private void ParseSnapshots()
    {
        uint count = U32(60);
        long at = (long)U64(64);
        if (count == 0 || !Inside(at, 40)) return;
        long start = at;
        for (int i = 0; i < Math.Min(count, 64u) && Inside(at, 40); i++)
        {
            SnapshotEntries.Add(at);
            AddL1($"snapshot {i} L1", U64(at), U32(at + 8));
            long varLen = U32(at + 36) + (long)U16(at + 12) + U16(at + 14);
            at += (40 + varLen + 7) & ~7L;
        }
        Regions.Add(new Region("snapshot table", start, Math.Max(40, at - start), 4));
    }
}
