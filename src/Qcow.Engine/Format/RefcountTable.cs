using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>
/// The stored refcounts (spec: "Host cluster management"): a refcount table of refcount block offsets, each block one
/// cluster of refcount_bits-wide entries (below 8 bits, packed least significant bits first, as qemu does).
/// </summary>
internal sealed class RefcountTable
{
    private readonly QcowImage _image;
    private readonly ulong[] _table;
    private readonly long _entriesPerBlock;
    private long _cachedBlock = -1;
    private byte[]? _cached;

    /// <summary>The offset bits of a refcount table entry (9..63); bits 0..8 are reserved.</summary>
    public const ulong EntryOffsetMask = 0xffff_ffff_ffff_fe00UL;

    /// <summary>Reads the refcount table of <paramref name="image"/>.</summary>
    public RefcountTable(QcowImage image)
    {
        _image = image;
        var h = image.Header;
        var bytes = new byte[h.RefcountTableClusters * (long)h.ClusterSize];
        // Past the end of the file the table reads as zeros (no blocks), as in qemu.
        PastEnd.ReadZeroFilled(image.File, (long)h.RefcountTableOffset, bytes);
        _table = new ulong[bytes.Length / 8];
        for (int i = 0; i < _table.Length; i++) _table[i] = BigEndian.U64(bytes, i * 8);
        _entriesPerBlock = h.ClusterSize * 8L / h.RefcountBits;
    }

    /// <summary>Refcount table entries (refcount block offsets, 0 = no block).</summary>
    public IReadOnlyList<ulong> Entries => _table;

    /// <summary>Clusters covered by one refcount block.</summary>
    public long EntriesPerBlock => _entriesPerBlock;

    /// <summary>
    /// The stored refcount of host cluster <paramref name="cluster"/>; null when its refcount block is not
    /// cluster-aligned (qemu cannot read it either). A block past the end of the file reads as zeros, as in qemu.
    /// </summary>
    public ulong? Get(long cluster)
    {
        long blockIndex = cluster / _entriesPerBlock;
        if (blockIndex >= _table.Length) return 0;
        ulong blockOffset = _table[blockIndex] & QcowLimits.OffsetMask;
        if (blockOffset == 0) return 0;
        var h = _image.Header;
        if (blockOffset % (ulong)h.ClusterSize != 0) return null;
        if (_cachedBlock != blockIndex)
        {
            _cached ??= new byte[h.ClusterSize];
            if (blockOffset < (ulong)_image.File.Length) PastEnd.ReadZeroFilled(_image.File, (long)blockOffset, _cached);
            else Array.Clear(_cached);
            _cachedBlock = blockIndex;
        }
        long i = cluster % _entriesPerBlock;
        var b = _cached!;
        return h.RefcountOrder switch
        {
            0 => (ulong)((b[i / 8] >> (int)(i % 8)) & 1),
            1 => (ulong)((b[i / 4] >> (int)(2 * (i % 4))) & 3),
            2 => (ulong)((b[i / 2] >> (int)(4 * (i % 2))) & 15),
            3 => b[i],
            4 => BigEndian.U16(b, (int)(i * 2)),
            5 => BigEndian.U32(b, (int)(i * 4)),
            _ => BigEndian.U64(b, (int)(i * 8)),
        };
    }
}
