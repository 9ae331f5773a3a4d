using System.Buffers;
using Qcow.Engine.Chain;
using Qcow.Engine.Views;

namespace Qcow.Engine.Operations;

/// <summary>The outcome of <c>qcow compare</c>.</summary>
/// <param name="Identical">True when the guest contents are the same.</param>
/// <param name="Message">qemu-img's wording: "Images are identical." or where they differ.</param>
/// <param name="Warning">A note such as a size mismatch, or null.</param>
public sealed record CompareResult(bool Identical, string Message, string? Warning);

/// <summary>
/// <c>qcow compare</c>: are two disks the same to the guest? Unallocated and zero are equal and a size difference is
/// fine when the extra part reads as zeros, unless strict, where sizes and allocation must match too.
/// </summary>
public static class CompareOperation
{
    private const int Chunk = 1 << 20;

    /// <summary>
    /// Compares the request's two images (optionally at snapshots). <paramref name="progress"/> hears how far the
    /// comparison has come; <paramref name="cancel"/> is checked between runs.
    /// </summary>
    public static CompareResult Run(CompareRequest request, Action<ProgressInfo>? progress = null, CancellationToken cancel = default)
    {
        bool strict = request.Strict;
        using var set = new ImageSet(request.Policy);
        var a = set.View(request.Image1, request.Snapshot1);
        var b = set.View(request.Image2, request.Snapshot2);
        if (a.Size != b.Size && strict) return new CompareResult(false, "Strict mode: Image size mismatch!", null);
        // As qemu-img: the size warning comes only once the common part has compared identical.
        long common = Math.Min(a.Size, b.Size);
        string? Warning(long at) => a.Size != b.Size && at >= common ? "Warning: Image size mismatch!" : null;
        long size = Math.Max(a.Size, b.Size);
        byte[] ba = ArrayPool<byte>.Shared.Rent(Chunk), bb = ArrayPool<byte>.Shared.Rent(Chunk);
        try
        {
            long offset = 0;
            while (offset < size)
            {
                cancel.ThrowIfCancellationRequested();
                progress?.Invoke(new ProgressInfo(offset, size, "compare"));
                var ea = a.GetExtent(offset, Math.Min(size - offset, Chunk));
                var eb = b.GetExtent(offset, ea.Length);
                long len = Math.Min(ea.Length, eb.Length);
                if (strict && IsAllocated(ea, a.Size, offset) != IsAllocated(eb, b.Size, offset))
                    return new CompareResult(false, $"Strict mode: Offset {offset} block status mismatch!", null);
                if (!ea.Take(len).SameSourceAs(eb.Take(len)))
                {
                    var sa = ba.AsSpan(0, (int)len);
                    var sb = bb.AsSpan(0, (int)len);
                    DiskView.ReadExtent(ea.Take(len), sa);
                    DiskView.ReadExtent(eb.Take(len), sb);
                    int diff = sa.CommonPrefixLength(sb);
                    if (diff < len)
                        return new CompareResult(false, $"Content mismatch at offset {offset + (diff & ~511L)}!", Warning(offset + diff));
                }
                offset += len;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(ba);
            ArrayPool<byte>.Shared.Return(bb);
        }
        return new CompareResult(true, "Images are identical.", Warning(size));
    }

    private static bool IsAllocated(in Extent e, long viewSize, long offset) =>
        offset < viewSize && e.Kind != ExtentKind.Unallocated;
}
