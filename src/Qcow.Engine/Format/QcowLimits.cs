namespace Qcow.Engine.Format;

/// <summary>
/// Bounds qemu enforces when it opens an image. We take the same ones so that no header field can make the engine
/// allocate, loop or seek without bound.
/// </summary>
internal static class QcowLimits
{
    /// <summary>Largest L1 table, in bytes (QCOW_MAX_L1_SIZE).</summary>
    public const long MaxL1Bytes = 32L << 20;
    /// <summary>Largest refcount table, in bytes (QCOW_MAX_REFTABLE_SIZE).</summary>
    public const long MaxRefcountTableBytes = 8L << 20;
    /// <summary>Most internal snapshots (QCOW_MAX_SNAPSHOTS).</summary>
    public const uint MaxSnapshots = 65536;
    /// <summary>Largest snapshot table, in bytes (QCOW_MAX_SNAPSHOTS_SIZE).</summary>
    public const long MaxSnapshotTableBytes = 64L << 20;
    /// <summary>Most extra data in one snapshot table entry (QCOW_MAX_SNAPSHOT_EXTRA_DATA).</summary>
    public const uint MaxSnapshotExtraData = 1024;
    /// <summary>Longest backing file name (1023 bytes).</summary>
    public const int MaxBackingFileName = 1023;
    /// <summary>Smallest cluster_bits (512 bytes).</summary>
    public const int MinClusterBits = 9;
    /// <summary>Largest cluster_bits (2 MiB).</summary>
    public const int MaxClusterBits = 21;
    /// <summary>Largest refcount_order (64-bit refcounts).</summary>
    public const int MaxRefcountOrder = 6;
    /// <summary>Largest virtual size qemu accepts (2^61 bytes, QCOW_MAX_SIZE... rounded to what an L1 can map).</summary>
    public const long MaxVirtualSize = 1L << 61;
    /// <summary>Host offsets are 56 bits wide in L1/L2 entries.</summary>
    public const ulong OffsetMask = 0x00ff_ffff_ffff_fe00UL;
}
