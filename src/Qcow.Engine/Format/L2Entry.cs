namespace Qcow.Engine.Format;

/// <summary>What an L2 entry (or one of its subclusters) says about guest data.</summary>
internal enum ClusterKind : byte
{
    /// <summary>Not allocated here: read from the backing file (zeros when there is none).</summary>
    Unallocated,
    /// <summary>Reads as zeros.</summary>
    Zero,
    /// <summary>Stored uncompressed at a host offset.</summary>
    Normal,
    /// <summary>Stored as a compressed stream.</summary>
    Compressed,
    /// <summary>Extended L2 with subclusters in more than one state: look at <see cref="L2Entry.SubclusterKind"/>.</summary>
    Mixed,
}

/// <summary>
/// What qemu's qcow2_get_cluster_type says of a whole entry (what check counts): unlike <see cref="ClusterKind"/>, it
/// tells a preallocated zero cluster from a plain one, and ignores the subcluster bitmap.
/// </summary>
internal enum QemuClusterType : byte
{
    /// <summary>No host cluster.</summary>
    Unallocated,
    /// <summary>Zero flag, no host cluster.</summary>
    ZeroPlain,
    /// <summary>Zero flag with a host cluster (preallocated).</summary>
    ZeroAllocated,
    /// <summary>A host cluster.</summary>
    Normal,
    /// <summary>A compressed stream.</summary>
    Compressed,
}

/// <summary>
/// A decoded L2 entry (spec: "Cluster mapping"): standard 8-byte entries, or extended 16-byte entries with a bitmap of
/// 32 subclusters (bits 0..31 allocated, 32..63 reads-as-zero).
/// </summary>
internal readonly struct L2Entry
{
    /// <summary>Bit 63: refcount is exactly one.</summary>
    public const ulong CopiedFlag = 1UL << 63;
    /// <summary>Bit 62: the cluster is compressed.</summary>
    public const ulong CompressedFlag = 1UL << 62;
    /// <summary>Bit 0: reads as zero (v3, standard entries only).</summary>
    public const ulong ZeroFlag = 1UL;
    /// <summary>Bits that must be zero in a standard entry (1..8, 56..61).</summary>
    public const ulong ReservedMask = 0x3f00_0000_0000_01feUL;

    /// <summary>Creates an entry from its raw words.</summary>
    /// <param name="word">The first 64-bit word.</param>
    /// <param name="bitmap">The subcluster bitmap (extended entries).</param>
    /// <param name="extended">True for 16-byte entries.</param>
    /// <param name="externalData">
    /// True when data lives in an external data file, where host offset 0 is a real offset: there the copied flag
    /// tells an allocated cluster at offset 0 from an unallocated one (all such clusters have refcount 1).
    /// </param>
    public L2Entry(ulong word, ulong bitmap, bool extended, bool externalData = false)
    {
        Word = word;
        Bitmap = bitmap;
        Extended = extended;
        ExternalData = externalData;
    }

    /// <summary>True when host offsets point into an external data file.</summary>
    public bool ExternalData { get; }

    private bool Allocated => HostOffset != 0 || ExternalData && (Word & CopiedFlag) != 0;

    /// <summary>The first (or only) 64-bit word.</summary>
    public ulong Word { get; }
    /// <summary>The subcluster bitmap (extended L2 only).</summary>
    public ulong Bitmap { get; }
    /// <summary>True for 16-byte entries.</summary>
    public bool Extended { get; }

    /// <summary>True when bit 62 is set.</summary>
    public bool IsCompressed => (Word & CompressedFlag) != 0;
    /// <summary>The host cluster offset of an uncompressed cluster (0 when unallocated).</summary>
    public ulong HostOffset => Word & QcowLimits.OffsetMask;

    /// <summary>qemu's qcow2_get_cluster_type of the entry: the zero flag counts in standard entries only.</summary>
    public QemuClusterType QemuType =>
        IsCompressed ? QemuClusterType.Compressed
        : !Extended && (Word & ZeroFlag) != 0 ? (HostOffset != 0 ? QemuClusterType.ZeroAllocated : QemuClusterType.ZeroPlain)
        : Allocated ? QemuClusterType.Normal
        : QemuClusterType.Unallocated;

    /// <summary>The state of the whole cluster (Mixed when subclusters differ).</summary>
    public ClusterKind Kind
    {
        get
        {
            if (IsCompressed) return ClusterKind.Compressed;
            if (!Extended)
            {
                if ((Word & ZeroFlag) != 0) return ClusterKind.Zero;
                return Allocated ? ClusterKind.Normal : ClusterKind.Unallocated;
            }
            uint alloc = (uint)Bitmap;
            uint zero = (uint)(Bitmap >> 32);
            if (alloc == uint.MaxValue) return ClusterKind.Normal;
            if (zero == uint.MaxValue) return ClusterKind.Zero;
            if (alloc == 0 && zero == 0) return ClusterKind.Unallocated;
            return ClusterKind.Mixed;
        }
    }

    /// <summary>The state of subcluster <paramref name="index"/> (0..31) of an extended entry.</summary>
    public ClusterKind SubclusterKind(int index)
    {
        if (!Extended) return Kind;
        if (IsCompressed) return ClusterKind.Compressed;
        if (((Bitmap >> index) & 1) != 0) return ClusterKind.Normal;
        if (((Bitmap >> (32 + index)) & 1) != 0) return ClusterKind.Zero;
        return ClusterKind.Unallocated;
    }

    /// <summary>
    /// Returns why qemu would refuse to read through this entry, or null when it reads it. <paramref name="version"/>
    /// is the image version (the zero flag needs v3). Reserved bits, and a bitmap on a compressed cluster, qemu reads
    /// through (check counts them); so do we.
    /// </summary>
    public string? Problem(int version, int clusterSize)
    {
        if (IsCompressed) return null;
        if (!Extended && (Word & ZeroFlag) != 0 && version < 3) return "zero flag in a version 2 image";
        if (Extended)
        {
            uint alloc = (uint)Bitmap, zero = (uint)(Bitmap >> 32);
            if ((alloc & zero) != 0) return "subcluster both allocated and zero";
            if (HostOffset == 0 && alloc != 0) return "allocated subclusters on an unallocated cluster";
        }
        if (HostOffset % (ulong)clusterSize != 0) return $"host offset 0x{HostOffset:x} is not cluster-aligned";
        return null;
    }
}

/// <summary>Where a compressed cluster's stream lives (spec: "Compressed Clusters Descriptor").</summary>
internal readonly record struct CompressedDescriptor(ulong HostOffset, long Length)
{
    /// <summary>Decodes the descriptor bits of an L2 entry for an image with <paramref name="clusterBits"/>.</summary>
    public static CompressedDescriptor Decode(ulong word, int clusterBits)
    {
        int x = 62 - (clusterBits - 8);
        ulong offsetMask = (1UL << x) - 1;
        ulong offset = word & offsetMask;
        ulong sectors = ((word & ~CopiedAndCompressed) >> x) + 1;
        // The stream runs from the offset to the end of the last sector counted.
        long length = (long)(sectors * 512) - (long)(offset & 511);
        return new CompressedDescriptor(offset, length);
    }

    /// <summary>Encodes a stream of <paramref name="length"/> bytes at <paramref name="hostOffset"/> into an L2 entry word.</summary>
    public static ulong Encode(ulong hostOffset, long length, int clusterBits)
    {
        int x = 62 - (clusterBits - 8);
        long end = (long)hostOffset + length;
        ulong lastSector = (ulong)((end - 1) >> 9);
        ulong additional = lastSector - (hostOffset >> 9);
        return L2Entry.CompressedFlag | (additional << x) | hostOffset;
    }

    private const ulong CopiedAndCompressed = L2Entry.CopiedFlag | L2Entry.CompressedFlag;
}
