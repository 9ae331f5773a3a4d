using Qcow.Engine.Format;

namespace Qcow.Engine.Views;

/// <summary>
/// One state of a qcow2 image: its active L1 table or a snapshot's, at that state's virtual size, over a backing view.
/// Clusters this layer does not allocate fall through to the backing view's current state, as in qemu.
/// </summary>
internal sealed class QcowView : DiskView
{
    private readonly ulong[] _l1;
    private readonly int _clusterBits;
    private readonly long _clusterMask;
    private readonly int _subclusterBits;
    private readonly int _l2Bits;
    private MappedTable? _lastTable;

    /// <summary>Creates the view of <paramref name="image"/> at <paramref name="snapshot"/> (null: current state).</summary>
    public QcowView(QcowImage image, Snapshot? snapshot, DiskView? backing, int depth)
    {
        Image = image;
        Snapshot = snapshot;
        Backing = backing;
        Depth = depth;
        image.EnsureDataReadable();
        _l1 = snapshot is null ? image.ActiveL1 : image.SnapshotL1(snapshot);
        // A snapshot without a recorded disk size has the image's current size, as qemu assumes.
        Size = (long)(snapshot?.DiskSize ?? image.Header.Size);
        _clusterBits = image.Header.ClusterBits;
        _clusterMask = (1L << _clusterBits) - 1;
        _subclusterBits = image.Header.ExtendedL2 ? _clusterBits - 5 : _clusterBits;
        _l2Bits = System.Numerics.BitOperations.Log2((uint)image.Header.L2Entries);
    }

    /// <summary>The image.</summary>
    public QcowImage Image { get; }
    /// <summary>The snapshot, or null for the current state.</summary>
    public Snapshot? Snapshot { get; }
    /// <summary>The backing view, or null.</summary>
    public DiskView? Backing { get; }
    /// <summary>Position in the chain (0 = top).</summary>
    public int Depth { get; }
    /// <inheritdoc />
    internal override int ChainDepth => Depth;
    /// <inheritdoc />
    public override long Size { get; }
    /// <inheritdoc />
    public override string Name => System.IO.Path.GetFileName(Image.Path) + (Snapshot is null ? "" : $"@{Snapshot.Name}");

    /// <inheritdoc />
    private protected override Extent GetExtentWithin(long offset, long maxLength)
    {
        long cluster = offset >> _clusterBits;
        var table = TableOf(cluster);
        if (table.Words is null)
        {
            long run = Math.Min(maxLength, (UnmappedClusters(cluster) << _clusterBits) - (offset & _clusterMask));
            return FromBacking(offset, run);
        }

        var entry = Image.Entry(table.Words, cluster);
        var (kind, host, granuleEnd) = Classify(entry, offset);
        long length = Math.Min(maxLength, granuleEnd - offset);

        if (kind == ClusterKind.Compressed)
            return new Extent(length, ExtentKind.Compressed, Depth, Image.DataFile, entry.Word, (int)(offset & _clusterMask), Image, cluster);

        // Extend the run over following granules of the same kind (and contiguous host bytes for data).
        long pos = granuleEnd;
        while (length < maxLength)
        {
            long c = pos >> _clusterBits;
            if (c >> _l2Bits != table.Index) table = TableOf(c);
            if (table.Words is null)
            {
                if (kind != ClusterKind.Unallocated) break;
                long more = UnmappedClusters(c) << _clusterBits;
                length = Math.Min(maxLength, length + more);
                pos += more;
                continue;
            }
            var next = Image.Entry(table.Words, c);
            var (k2, h2, end2) = Classify(next, pos);
            // Data runs need contiguous host bytes; so do preallocated zero runs, to keep their offsets exact.
            if (k2 != kind || (host != 0 || h2 != 0) && h2 != host + (ulong)(pos - offset)) break;
            length = Math.Min(maxLength, length + (end2 - pos));
            pos = end2;
        }

        return kind switch
        {
            ClusterKind.Normal => new Extent(length, ExtentKind.Data, Depth, Image.DataFile, host, Source: Image),
            ClusterKind.Zero => new Extent(length, ExtentKind.Zero, Depth, host != 0 ? Image.DataFile : null, host),
            _ => FromBacking(offset, length, host),
        };
    }

    // Clusters from guestCluster to the end of its L2 table's range, which an unmapped table leaves to the backing view.
    private long UnmappedClusters(long guestCluster) => (1L << _l2Bits) - (guestCluster & ((1L << _l2Bits) - 1));

    /// <summary>
    /// The L2 table of guest cluster <paramref name="guestCluster"/>: the last one this view used when it is the same
    /// (reads walk guest order), so a run of lookups costs one cache lookup per table. Swapped as one reference, so
    /// parallel readers see either table whole.
    /// </summary>
    private MappedTable TableOf(long guestCluster)
    {
        long index = guestCluster >> _l2Bits;
        var last = _lastTable;
        if (last is not null && last.Index == index) return last;
        var table = new MappedTable(index, Image.L2Table(_l1, guestCluster));
        _lastTable = table;
        return table;
    }

    /// <summary>An L2 table by its index in the L1 table; null words where the L1 entry maps nothing.</summary>
    private sealed record MappedTable(long Index, ulong[]? Words);

    /// <summary>The state at <paramref name="offset"/>: kind, host offset of that byte, and where the granule ends.</summary>
    private (ClusterKind Kind, ulong Host, long GranuleEnd) Classify(in L2Entry entry, long offset)
    {
        long inCluster = offset & _clusterMask;
        long clusterStart = offset - inCluster;
        var kind = entry.Kind;
        if (kind == ClusterKind.Mixed)
        {
            int sub = (int)(inCluster >> _subclusterBits);
            kind = entry.SubclusterKind(sub);
            long subEnd = clusterStart + ((long)(sub + 1) << _subclusterBits);
            // Every subcluster of an allocated cluster has a host offset, even unallocated ones (qemu-img map shows it).
            return (kind, entry.HostOffset != 0 ? entry.HostOffset + (ulong)inCluster : 0, subEnd);
        }
        long end = clusterStart + (1L << _clusterBits);
        // A zero cluster may keep a preallocated host cluster (qemu-img map reports its offset).
        bool hasHost = (kind == ClusterKind.Normal || kind == ClusterKind.Zero) && entry.HostOffset != 0;
        return hasHost ? (kind, entry.HostOffset + (ulong)inCluster, end) : (kind, 0, end);
    }

    private Extent FromBacking(long offset, long length, ulong host = 0)
    {
        // Past the end of a shorter backing file reads as zeros; qemu reports it unallocated at this layer.
        if (Backing is null || offset >= Backing.Size)
            return new Extent(length, ExtentKind.Unallocated, Depth, host != 0 ? Image.DataFile : null, host);
        return Backing.GetExtent(offset, length);
    }
}
