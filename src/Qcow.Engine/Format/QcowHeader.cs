using System.Text;
using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>
/// The qcow2 header (spec: "Header"), validated against the file it came from. Fields are named as in the spec.
/// </summary>
public sealed class QcowHeader
{
    /// <summary>"QFI\xfb".</summary>
    public const uint Magic = 0x514649fb;
    /// <summary>Length of a version 2 header.</summary>
    public const int V2Length = 72;
    /// <summary>Smallest version 3 header (up to header_length).</summary>
    public const int V3MinLength = 104;
    /// <summary>The version 3 header we write: with compression_type, padded to 8.</summary>
    public const int V3WrittenLength = 112;

    /// <summary>2 (compat=0.10) or 3 (compat=1.1).</summary>
    public int Version { get; init; }
    /// <summary>Offset of the backing file name, 0 if none.</summary>
    public ulong BackingFileOffset { get; init; }
    /// <summary>Length of the backing file name in bytes.</summary>
    public uint BackingFileSize { get; init; }
    /// <summary>log2 of the cluster size.</summary>
    public int ClusterBits { get; init; }
    /// <summary>Virtual disk size in bytes.</summary>
    public ulong Size { get; init; }
    /// <summary>The size field as stored (qemu checks the L1 table against it before rounding).</summary>
    internal ulong SizeField { get; init; }
    /// <summary>0 none, 1 AES, 2 LUKS.</summary>
    public uint CryptMethod { get; init; }
    /// <summary>Entries in the active L1 table.</summary>
    public uint L1Size { get; init; }
    /// <summary>Offset of the active L1 table.</summary>
    public ulong L1TableOffset { get; init; }
    /// <summary>Offset of the refcount table.</summary>
    public ulong RefcountTableOffset { get; init; }
    /// <summary>Clusters occupied by the refcount table.</summary>
    public uint RefcountTableClusters { get; init; }
    /// <summary>Number of internal snapshots.</summary>
    public uint NbSnapshots { get; init; }
    /// <summary>Offset of the snapshot table.</summary>
    public ulong SnapshotsOffset { get; init; }
    /// <summary>Incompatible feature bits (v3).</summary>
    public IncompatibleFeatures IncompatibleFeatures { get; init; }
    /// <summary>Compatible feature bits (v3).</summary>
    public CompatibleFeatures CompatibleFeatures { get; init; }
    /// <summary>Autoclear feature bits (v3).</summary>
    public AutoclearFeatures AutoclearFeatures { get; init; }
    /// <summary>log2 of the refcount width in bits (v2: always 4).</summary>
    public int RefcountOrder { get; init; } = 4;
    /// <summary>Length of the header structure (v2: 72).</summary>
    public uint HeaderLength { get; init; } = V2Length;
    /// <summary>How compressed clusters are encoded.</summary>
    public CompressionType CompressionType { get; init; }

    /// <summary>Bytes per cluster.</summary>
    public int ClusterSize => 1 << ClusterBits;
    /// <summary>True when L2 entries are 16 bytes with subcluster bitmaps.</summary>
    public bool ExtendedL2 => (IncompatibleFeatures & IncompatibleFeatures.ExtendedL2) != 0;
    /// <summary>Bytes per L2 entry.</summary>
    public int L2EntrySize => ExtendedL2 ? 16 : 8;
    /// <summary>L2 entries per L2 table (one cluster).</summary>
    public int L2Entries => ClusterSize / L2EntrySize;
    /// <summary>Width of one refcount in bits.</summary>
    public int RefcountBits => 1 << RefcountOrder;
    /// <summary>"0.10" or "1.1", as qemu-img prints it.</summary>
    public string Compat => Version == 2 ? "0.10" : "1.1";

    /// <summary>Reads and validates the header of <paramref name="file"/>. Returns the first cluster's bytes too.</summary>
    internal static QcowHeader Read(ImageFile file, out byte[] firstCluster)
    {
        string path = file.Path;
        if (file.Length < V2Length)
            throw new QcowFormatException(path, "header", $"file is {file.Length} bytes, too short for a qcow2 header");
        Span<byte> head = stackalloc byte[V3WrittenLength];
        int got = file.ReadAtMost(0, head);
        head = head[..got];
        if (BigEndian.U32(head, 0) != Magic)
            throw new QcowFormatException(path, "magic", "not a qcow2 image (no QFI\\xfb magic)");
        uint version = BigEndian.U32(head, 4);
        if (version != 2 && version != 3)
            throw new QcowFormatException(path, "version", $"unsupported qcow2 version {version} (2 and 3 are supported)");
        uint clusterBits = BigEndian.U32(head, 20);
        if (clusterBits < QcowLimits.MinClusterBits || clusterBits > QcowLimits.MaxClusterBits)
            throw new QcowFormatException(path, "cluster_bits", $"{clusterBits} is outside 9..21 (512 B to 2 MiB clusters)");
        int clusterSize = 1 << (int)clusterBits;

        var h = new HeaderBuilder
        {
            Version = version,
            BackingFileOffset = BigEndian.U64(head, 8),
            BackingFileSize = BigEndian.U32(head, 16),
            ClusterBits = (int)clusterBits,
            // qemu keeps the virtual size in 512-byte sectors, rounded down (bs->total_sectors): a size that is not
            // a multiple of 512 (qemu never writes one) reads as the shorter disk there too.
            Size = BigEndian.U64(head, 24) & ~511UL,
            SizeField = BigEndian.U64(head, 24),
            CryptMethod = BigEndian.U32(head, 32),
            L1Size = BigEndian.U32(head, 36),
            L1TableOffset = BigEndian.U64(head, 40),
            RefcountTableOffset = BigEndian.U64(head, 48),
            RefcountTableClusters = BigEndian.U32(head, 56),
            NbSnapshots = BigEndian.U32(head, 60),
            SnapshotsOffset = BigEndian.U64(head, 64),
        };
        if (version == 3)
        {
            if (head.Length < V3MinLength)
                throw new QcowFormatException(path, "header_length", "file too short for a version 3 header");
            h.IncompatibleFeatures = BigEndian.U64(head, 72);
            h.CompatibleFeatures = BigEndian.U64(head, 80);
            h.AutoclearFeatures = BigEndian.U64(head, 88);
            h.RefcountOrder = BigEndian.U32(head, 96);
            h.HeaderLength = BigEndian.U32(head, 100);
            // As qemu 7.2: at least 104 and inside the first cluster; any length in between (105 too) is accepted.
            if (h.HeaderLength < V3MinLength || h.HeaderLength > clusterSize)
                throw new QcowFormatException(path, "header_length", $"{h.HeaderLength} must be at least 104 and within the first cluster ({clusterSize} bytes)");
            if (h.HeaderLength > V3MinLength && head.Length > V3MinLength)
                h.CompressionTypeByte = head[104];
        }
        else
        {
            h.RefcountOrder = 4;
            h.HeaderLength = V2Length;
        }

        // Whole, zero-filled past the end of a short file, as qemu reads it.
        firstCluster = new byte[clusterSize];
        PastEnd.ReadZeroFilled(file, 0, firstCluster);
        return h.Build();
    }

    /// <summary>
    /// Checks every field against the file and qemu's limits. <paramref name="featureName"/> names unknown feature
    /// bits from the image's own feature name table, when it has one; <paramref name="forCheck"/> opens as
    /// qemu-img check does (an image without a refcount table can be checked).
    /// </summary>
    internal void Validate(ImageFile file, Func<int, string?> featureName, bool forCheck = false)
    {
        string path = file.Path;
        long fileLength = file.Length;
        long cs = ClusterSize;

        var unknown = (ulong)IncompatibleFeatures & ~(ulong)IncompatibleFeatures.Known;
        if (unknown != 0)
        {
            int bit = System.Numerics.BitOperations.TrailingZeroCount(unknown);
            string name = featureName(bit) is { } n ? $"'{n}' (bit {bit})" : $"bit {bit}";
            throw new QcowFormatException(path, "incompatible_features", $"unknown incompatible feature {name}: this image needs a newer tool");
        }
        // The corrupt bit and encryption are no reason to refuse opening (qemu opens both read-only, and info and
        // check work); reading guest data of an encrypted image is refused later (QcowImage.ReadRefusal).
        if (CryptMethod > 2)
            throw new QcowFormatException(path, "crypt_method", $"unknown encryption method {CryptMethod}");
        if (RefcountOrder > QcowLimits.MaxRefcountOrder)
            throw new QcowFormatException(path, "refcount_order", $"{RefcountOrder} is larger than 6 (64-bit refcounts)");
        if (CompressionType != CompressionType.Deflate && CompressionType != CompressionType.Zstd)
            throw new QcowFormatException(path, "compression_type", $"unknown compression type {(byte)CompressionType}");
        bool typeBit = (IncompatibleFeatures & IncompatibleFeatures.CompressionType) != 0;
        if (typeBit != (CompressionType != CompressionType.Deflate))
            throw new QcowFormatException(path, "compression_type", typeBit
                ? "the compression type feature bit is set but compression_type is deflate"
                : "compression_type is not deflate but the compression type feature bit is clear");
        if (ExtendedL2 && ClusterBits < 14)
            throw new QcowFormatException(path, "incompatible_features", $"extended L2 entries need clusters of at least 16 KiB (cluster_bits {ClusterBits})");
        if (Size > (ulong)QcowLimits.MaxVirtualSize)
            throw new QcowFormatException(path, "size", $"virtual size {Size} is too large");

        if (BackingFileOffset != 0)
        {
            if (BackingFileSize > QcowLimits.MaxBackingFileName)
                throw new QcowFormatException(path, "backing_file_size", $"{BackingFileSize} is longer than {QcowLimits.MaxBackingFileName} bytes");
            if (BackingFileOffset > (ulong)cs || BackingFileOffset + BackingFileSize > (ulong)cs)
                throw new QcowFormatException(path, "backing_file_offset", "the backing file name must lie within the first cluster");
            if (BackingFileOffset + BackingFileSize > (ulong)fileLength)
                throw new QcowFormatException(path, "backing_file_offset", "the backing file name lies past the end of the file");
        }

        // The L1 table must map the whole virtual disk and stay within qemu's bound.
        ulong l2Span = (ulong)L2Entries * (ulong)cs;
        ulong neededL1 = (Math.Min(SizeField, (ulong)QcowLimits.MaxVirtualSize) + l2Span - 1) / l2Span;
        if ((ulong)L1Size * 8 > QcowLimits.MaxL1Bytes)
            throw new QcowFormatException(path, "l1_size", $"{L1Size} entries is more than qemu's 32 MiB L1 limit");
        if (L1Size < neededL1)
            throw new QcowFormatException(path, "l1_size", $"{L1Size} entries do not cover the virtual size {Size} (needs {neededL1})");
        CheckTableOffset(path, "l1_table_offset", L1TableOffset, cs);

        // As qemu: refused, except by check, which then counts every reference as a corruption.
        if (RefcountTableClusters == 0 && !forCheck)
            throw new QcowFormatException(path, "refcount_table_clusters", "is 0: the image has no refcount table");
        if ((ulong)RefcountTableClusters * (ulong)cs > QcowLimits.MaxRefcountTableBytes)
            throw new QcowFormatException(path, "refcount_table_clusters", $"{RefcountTableClusters} clusters is more than qemu's 8 MiB refcount table limit");
        CheckTableOffset(path, "refcount_table_offset", RefcountTableOffset, cs);

        if (NbSnapshots > QcowLimits.MaxSnapshots)
            throw new QcowFormatException(path, "nb_snapshots", $"{NbSnapshots} is more than qemu's limit of {QcowLimits.MaxSnapshots}");
        // qemu validates the offset even when there are no snapshots.
        CheckTableOffset(path, "snapshots_offset", SnapshotsOffset, cs);
    }

    /// <summary>
    /// Checks a table offset as qemu does when it opens an image: cluster-aligned and far from the end of the address
    /// space. Whether the table lies inside the file is checked where it is read (qemu reads zeros past the end).
    /// </summary>
    internal static void CheckTableOffset(string path, string field, ulong offset, long clusterSize)
    {
        if (offset % (ulong)clusterSize != 0 || offset > (ulong)long.MaxValue / 2)
            throw new QcowFormatException(path, field, $"0x{offset:x} is not a valid cluster-aligned offset");
    }

    /// <summary>Reads the backing file name stored in the first cluster, or null.</summary>
    public string? ReadBackingFileName(ReadOnlySpan<byte> firstCluster, string path)
    {
        if (BackingFileOffset == 0 || BackingFileSize == 0) return null;
        var bytes = firstCluster.Slice((int)BackingFileOffset, (int)BackingFileSize);
        try
        {
            return new UTF8Encoding(false, true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            throw new QcowFormatException(path, "backing_file", "the backing file name is not valid UTF-8");
        }
    }

    /// <summary>Encodes the header into <paramref name="dest"/> (at least <see cref="HeaderLength"/> bytes).</summary>
    public void WriteTo(Span<byte> dest)
    {
        dest[..(int)HeaderLength].Clear();
        BigEndian.Put(dest, 0, Magic);
        BigEndian.Put(dest, 4, (uint)Version);
        BigEndian.Put(dest, 8, BackingFileOffset);
        BigEndian.Put(dest, 16, BackingFileSize);
        BigEndian.Put(dest, 20, (uint)ClusterBits);
        BigEndian.Put(dest, 24, Size);
        BigEndian.Put(dest, 32, CryptMethod);
        BigEndian.Put(dest, 36, L1Size);
        BigEndian.Put(dest, 40, L1TableOffset);
        BigEndian.Put(dest, 48, RefcountTableOffset);
        BigEndian.Put(dest, 56, RefcountTableClusters);
        BigEndian.Put(dest, 60, NbSnapshots);
        BigEndian.Put(dest, 64, SnapshotsOffset);
        if (Version >= 3)
        {
            BigEndian.Put(dest, 72, (ulong)IncompatibleFeatures);
            BigEndian.Put(dest, 80, (ulong)CompatibleFeatures);
            BigEndian.Put(dest, 88, (ulong)AutoclearFeatures);
            BigEndian.Put(dest, 96, (uint)RefcountOrder);
            BigEndian.Put(dest, 100, HeaderLength);
            if (HeaderLength > V3MinLength) dest[104] = (byte)CompressionType;
        }
    }

    /// <summary>Mutable staging for the raw fields while they are parsed, so validation sees one consistent header.</summary>
    private sealed class HeaderBuilder
    {
        public uint Version, BackingFileSize, CryptMethod, L1Size, RefcountTableClusters, NbSnapshots, RefcountOrder, HeaderLength;
        public int ClusterBits;
        public ulong BackingFileOffset, Size, SizeField, L1TableOffset, RefcountTableOffset, SnapshotsOffset;
        public ulong IncompatibleFeatures, CompatibleFeatures, AutoclearFeatures;
        public byte CompressionTypeByte;

        public QcowHeader Build() => new()
        {
            Version = (int)Version,
            BackingFileOffset = BackingFileOffset,
            BackingFileSize = BackingFileSize,
            ClusterBits = ClusterBits,
            Size = Size,
            SizeField = SizeField,
            CryptMethod = CryptMethod,
            L1Size = L1Size,
            L1TableOffset = L1TableOffset,
            RefcountTableOffset = RefcountTableOffset,
            RefcountTableClusters = RefcountTableClusters,
            NbSnapshots = NbSnapshots,
            SnapshotsOffset = SnapshotsOffset,
            IncompatibleFeatures = (IncompatibleFeatures)IncompatibleFeatures,
            CompatibleFeatures = (CompatibleFeatures)CompatibleFeatures,
            AutoclearFeatures = (AutoclearFeatures)AutoclearFeatures,
            RefcountOrder = (int)Math.Min(RefcountOrder, 255),
            HeaderLength = HeaderLength,
            CompressionType = (CompressionType)CompressionTypeByte,
        };
    }
}
