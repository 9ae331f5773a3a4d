using Qcow.Engine.IO;

namespace Qcow.Engine.Views;

/// <summary>Where a run of guest bytes comes from.</summary>
internal enum ExtentKind : byte
{
    /// <summary>Nothing allocated anywhere in the chain: reads as zeros.</summary>
    Unallocated,
    /// <summary>A layer says "reads as zero" (zero flag, zero subclusters, or past the end of a shorter backing file).</summary>
    Zero,
    /// <summary>Uncompressed bytes at <see cref="Extent.HostOffset"/> in <see cref="Extent.File"/>.</summary>
    Data,
    /// <summary>Part of a compressed cluster; <see cref="Extent.HostOffset"/> is the L2 entry word.</summary>
    Compressed,
}

/// <summary>
/// A run of guest bytes with one source. Two extents with the same kind, file and host offset hold the same bytes:
/// that is what lets a diff decide "identical" without reading data.
/// </summary>
/// <param name="Length">Bytes in the run.</param>
/// <param name="Kind">Where they come from.</param>
/// <param name="Depth">0 for the top image of the view, 1 for its backing file, and so on.</param>
/// <param name="File">The host file for Data and Compressed runs.</param>
/// <param name="HostOffset">Host offset of the first byte (Data, or a Zero run that keeps preallocated clusters), or the L2 entry word (Compressed).</param>
/// <param name="InCluster">For Compressed: offset of the first byte within the decompressed cluster.</param>
/// <param name="Source">The qcow2 image whose L2 entry maps the run (Data and Compressed); null otherwise.</param>
/// <param name="GuestCluster">For Compressed: the guest cluster index in <paramref name="Source"/> (for messages).</param>
/// <param name="IsRaw">True when the bytes come from a raw file (guest offset = host offset).</param>
internal readonly record struct Extent(
    long Length,
    ExtentKind Kind,
    int Depth,
    ImageFile? File = null,
    ulong HostOffset = 0,
    int InCluster = 0,
    Format.QcowImage? Source = null,
    long GuestCluster = 0,
    bool IsRaw = false)
{
    /// <summary>True when the run reads as zeros without touching any file.</summary>
    public bool ReadsAsZero => Kind is ExtentKind.Unallocated or ExtentKind.Zero;

    /// <summary>True when both runs start at the same source, so their bytes are the same.</summary>
    public bool SameSourceAs(in Extent other)
    {
        if (ReadsAsZero && other.ReadsAsZero) return true;
        return Kind == other.Kind && ReferenceEquals(File, other.File) && HostOffset == other.HostOffset && InCluster == other.InCluster;
    }

    /// <summary>This run, shortened to <paramref name="length"/> bytes.</summary>
    public Extent Take(long length) => this with { Length = length };

    /// <summary>This run with its first <paramref name="bytes"/> bytes dropped.</summary>
    public Extent Skip(long bytes) => Kind switch
    {
        ExtentKind.Data => this with { Length = Length - bytes, HostOffset = HostOffset + (ulong)bytes },
        ExtentKind.Zero or ExtentKind.Unallocated when HostOffset != 0 => this with { Length = Length - bytes, HostOffset = HostOffset + (ulong)bytes },
        ExtentKind.Compressed => this with { Length = Length - bytes, InCluster = InCluster + (int)bytes },
        _ => this with { Length = Length - bytes },
    };
}
