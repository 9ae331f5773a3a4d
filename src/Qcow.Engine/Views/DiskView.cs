using System.Buffers;
using Qcow.Engine.Compression;
using Qcow.Engine.Format;

namespace Qcow.Engine.Views;

/// <summary>
/// A guest disk as one state of an image sees it: the image (at its current state or a snapshot) with its whole
/// backing chain. Offsets past <see cref="Size"/> read as zeros, which is how a shorter backing file behaves.
/// </summary>
public abstract class DiskView
{
    /// <summary>The virtual size of this state.</summary>
    public abstract long Size { get; }

    /// <summary>A short description for messages: file name and snapshot.</summary>
    public abstract string Name { get; }

    /// <summary>Position of this view's image in the chain it was opened from (0 = top).</summary>
    internal virtual int ChainDepth => 0;

    /// <summary>
    /// The run of bytes that starts at <paramref name="offset"/> and shares one source, at most
    /// <paramref name="maxLength"/> bytes long (and at least one byte).
    /// </summary>
    internal Extent GetExtent(long offset, long maxLength)
    {
        if (offset >= Size) return new Extent(maxLength, ExtentKind.Zero, ChainDepth);
        return GetExtentWithin(offset, Math.Min(maxLength, Size - offset));
    }

    /// <summary>Like <see cref="GetExtent"/> for an offset inside the disk and a length that stays inside it.</summary>
    private protected abstract Extent GetExtentWithin(long offset, long maxLength);

    /// <summary>Reads guest bytes at <paramref name="offset"/> (zeros past the end).</summary>
    public void Read(long offset, Span<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var e = GetExtent(offset, buffer.Length);
            int n = (int)e.Length;
            ReadExtent(e, buffer[..n]);
            buffer = buffer[n..];
            offset += n;
        }
    }

    /// <summary>Fills <paramref name="dest"/> with the bytes of extent <paramref name="e"/>.</summary>
    internal static void ReadExtent(in Extent e, Span<byte> dest)
    {
        switch (e.Kind)
        {
            case ExtentKind.Data:
                int got = e.File!.ReadAtMost((long)e.HostOffset, dest);
                // A data cluster that runs past the end of its file reads as zeros there, as in qemu.
                dest[got..].Clear();
                break;
            case ExtentKind.Compressed:
                var image = e.Source!;
                byte[] cluster = ArrayPool<byte>.Shared.Rent(image.Header.ClusterSize);
                try
                {
                    var span = cluster.AsSpan(0, image.Header.ClusterSize);
                    image.ReadCompressed(e.HostOffset, e.GuestCluster, span, image.Header.CompressionType == CompressionType.Zstd
                        ? ClusterCompression.TryDecompressZstd
                        : ClusterCompression.TryInflate);
                    span.Slice(e.InCluster, dest.Length).CopyTo(dest);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(cluster);
                }
                break;
            default:
                dest.Clear();
                break;
        }
    }
}

/// <summary>A disk of zeros: the base below the bottom layer of a chain.</summary>
internal sealed class ZeroView(long size) : DiskView
{
    /// <inheritdoc />
    public override long Size => size;
    /// <inheritdoc />
    public override string Name => "(empty)";
    /// <inheritdoc />
    private protected override Extent GetExtentWithin(long offset, long maxLength) => new(maxLength, ExtentKind.Unallocated, 0);
}
