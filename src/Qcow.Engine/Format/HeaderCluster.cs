using System.Text;
using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>
/// Cluster 0 of an image we write (spec: "Header" and "Header extensions"): the header, the backing file format
/// extension when a backing format is recorded, the end of the extension area, then the backing file name; zeros after.
/// The same fields and table places always give the same bytes.
/// </summary>
/// <param name="Path">Names the image in errors.</param>
/// <param name="Version">2 (compat 0.10) or 3 (compat 1.1).</param>
/// <param name="ClusterBits">log2 of the cluster size.</param>
/// <param name="VirtualSize">The guest disk's size in bytes.</param>
/// <param name="Compression">The compression type of compressed clusters; zstd is recorded as the incompatible feature.</param>
/// <param name="RefcountOrder">log2 of the refcount width in bits.</param>
/// <param name="BackingName">The backing file name to record, or null.</param>
/// <param name="BackingFormat">The backing format to record, or null.</param>
internal sealed record HeaderCluster(string Path, int Version, int ClusterBits, long VirtualSize, CompressionType Compression, int RefcountOrder,
    string? BackingName, string? BackingFormat)
{
    private int ClusterSize => 1 << ClusterBits;

    /// <summary>
    /// The cluster, pointing at the L1 table and the refcount table; refuses (naming <see cref="Path"/>) a backing name
    /// or extensions that do not fit in it.
    /// </summary>
    public byte[] Build(ulong l1Offset, uint l1Size, ulong refcountTableOffset, uint refcountTableClusters)
    {
        var cluster = new byte[ClusterSize];
        bool v3 = Version >= 3;
        int at = v3 ? QcowHeader.V3WrittenLength : QcowHeader.V2Length;
        if (BackingFormat is not null)
        {
            byte[] fmt = Encoding.UTF8.GetBytes(BackingFormat);
            at = PutExtension(cluster, at, HeaderExtensions.BackingFormatType, fmt);
        }
        at = PutExtension(cluster, at, HeaderExtensions.EndMarker, []);
        ulong backingOffset = 0;
        uint backingSize = 0;
        if (BackingName is not null)
        {
            byte[] name = Encoding.UTF8.GetBytes(BackingName);
            if (name.Length > QcowLimits.MaxBackingFileName || at + name.Length > ClusterSize)
                throw new QcowException(Path, $"backing file name '{BackingName}' is too long for {ClusterSize}-byte clusters");
            name.CopyTo(cluster, at);
            backingOffset = (ulong)at;
            backingSize = (uint)name.Length;
        }
        bool zstd = Compression == CompressionType.Zstd;
        var header = new QcowHeader
        {
            Version = Version,
            BackingFileOffset = backingOffset,
            BackingFileSize = backingSize,
            ClusterBits = ClusterBits,
            Size = (ulong)VirtualSize,
            L1Size = l1Size,
            L1TableOffset = l1Offset,
            RefcountTableOffset = refcountTableOffset,
            RefcountTableClusters = refcountTableClusters,
            IncompatibleFeatures = zstd ? IncompatibleFeatures.CompressionType : IncompatibleFeatures.None,
            RefcountOrder = RefcountOrder,
            HeaderLength = (uint)(v3 ? QcowHeader.V3WrittenLength : QcowHeader.V2Length),
            CompressionType = zstd ? CompressionType.Zstd : CompressionType.Deflate,
        };
        header.WriteTo(cluster);
        return cluster;
    }

    /// <summary>Puts one extension (type, length, data padded to 8 bytes) at <paramref name="at"/>; returns where the next goes.</summary>
    private int PutExtension(byte[] cluster, int at, uint type, ReadOnlySpan<byte> data)
    {
        int padded = (data.Length + 7) & ~7;
        if (at + 8 + padded > ClusterSize)
            throw new QcowException(Path, $"header extensions do not fit in one {ClusterSize}-byte cluster");
        BigEndian.Put(cluster, at, type);
        BigEndian.Put(cluster, at + 4, (uint)data.Length);
        data.CopyTo(cluster.AsSpan(at + 8));
        return at + 8 + padded;
    }
}
