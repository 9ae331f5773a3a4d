using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>
/// The host clusters that hold metadata: header, refcount table and blocks, every L1 table, the snapshot table and
/// every L2 table (qemu's QCOW2_OL_* overlap classes). A guest data cluster or compressed stream that lands on one of
/// them, or an L2 table that lands on a non-L2 structure, is corruption: qemu-img check reports it and qemu refuses
/// to write there. Reading it as guest data would hand the image's own tables to the guest, so we refuse it.
/// Built from the raw tables without throwing: each lookup reports only its own entry.
/// </summary>
internal sealed class MetadataClusters
{
    /// <summary>What <see cref="Owner"/> returns for an L2 table cluster.</summary>
    public const string L2Table = "L2 table";

    private readonly Dictionary<long, string> _owners = new();
    private readonly int _clusterBits;

    private MetadataClusters(int clusterBits) => _clusterBits = clusterBits;

    /// <summary>Collects the metadata clusters of <paramref name="image"/> (its tables were range-checked on open).</summary>
    public static MetadataClusters Of(QcowImage image)
    {
        var h = image.Header;
        var file = image.File;
        long cs = h.ClusterSize;
        var map = new MetadataClusters(h.ClusterBits);
        map.Add(0, cs, "header cluster");
        long rtLength = h.RefcountTableClusters * cs;
        map.Add((long)h.RefcountTableOffset, rtLength, "refcount table");
        foreach (ulong entry in new RefcountTable(image).Entries)
        {
            ulong block = entry & QcowLimits.OffsetMask;
            if (block != 0 && block % (ulong)cs == 0 && block < (ulong)file.Length) map.Add((long)block, cs, "refcount block");
        }
        // Entry by entry: the name of a damaged entry may run over other structures, so only its fixed part counts.
        foreach (var s in image.Snapshots)
            map.Add(s.EntryOffset, s.HasDamagedName ? 40 : s.EntryLength, "snapshot table");
        var l2Tables = new List<ulong>();
        map.AddL1(file, h.L1TableOffset, h.L1Size, "active L1 table", l2Tables);
        foreach (var s in image.Snapshots.Where(s => s.IsIntact))
            map.AddL1(file, s.L1TableOffset, s.L1Size, $"L1 table of snapshot '{s.Name}'", l2Tables);
        // L2 tables last: where one overlaps another structure, the other structure's name is the useful one.
        foreach (var l2 in l2Tables) map._owners.TryAdd((long)l2 >> map._clusterBits, L2Table);
        return map;
    }

    /// <summary>The structure occupying the host cluster of <paramref name="hostOffset"/>, or null for none.</summary>
    public string? Owner(ulong hostOffset) => _owners.GetValueOrDefault((long)(hostOffset >> _clusterBits));

    private void Add(long offset, long length, string what)
    {
        if (length <= 0) return;
        for (long c = offset >> _clusterBits; c <= (offset + length - 1) >> _clusterBits; c++) _owners.TryAdd(c, what);
    }

    private void AddL1(ImageFile file, ulong offset, uint size, string what, List<ulong> l2Tables)
    {
        if (size == 0) return;
        Add((long)offset, size * 8L, what);
        var bytes = new byte[size * 8L];
        PastEnd.ReadZeroFilled(file, (long)offset, bytes);
        long cs = 1L << _clusterBits;
        for (int i = 0; i < bytes.Length; i += 8)
        {
            ulong l2 = BigEndian.U64(bytes, i) & QcowLimits.OffsetMask;
            if (l2 != 0 && l2 % (ulong)cs == 0 && l2 < (ulong)file.Length) l2Tables.Add(l2);
        }
    }
}
