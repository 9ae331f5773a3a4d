using Qcow.Engine.Chain;
using Qcow.Engine.Views;

namespace Qcow.Engine.Operations;

/// <summary>One run of <c>qcow map</c> output, as <c>qemu-img map --output=json</c> reports it.</summary>
/// <param name="Start">Guest offset.</param>
/// <param name="Length">Bytes.</param>
/// <param name="Depth">Chain depth the bytes come from (the chain length when nothing is allocated).</param>
/// <param name="Present">Allocated somewhere in the chain.</param>
/// <param name="Zero">Reads as zeros.</param>
/// <param name="Data">Stored as data (not the zero flag).</param>
/// <param name="Offset">Host offset in <paramref name="File"/>, when the bytes are stored uncompressed.</param>
/// <param name="File">The file holding the bytes, when <paramref name="Offset"/> is set.</param>
/// <param name="Compressed">The bytes live in a compressed cluster.</param>
public sealed record MapEntry(long Start, long Length, int Depth, bool Present, bool Zero, bool Data, long? Offset, string? File, bool Compressed);

/// <summary><c>qcow map</c>: the block status of every guest byte of a state, merged into runs.</summary>
public static class MapOperation
{
    /// <summary>
    /// Maps the image at the request's snapshot (null: current state). <paramref name="progress"/> hears how far the
    /// map has come; <paramref name="cancel"/> is checked between runs.
    /// </summary>
    public static MapResult Run(MapRequest request, Action<ProgressInfo>? progress = null, CancellationToken cancel = default)
    {
        using var set = new ImageSet(request.Policy);
        var view = set.View(request.Image, request.Snapshot);
        var list = new List<MapEntry>();
        var preallocated = new Dictionary<Format.QcowImage, bool>();
        long offset = 0;
        while (offset < view.Size)
        {
            cancel.ThrowIfCancellationRequested();
            progress?.Invoke(new ProgressInfo(offset, view.Size, "map"));
            var e = view.GetExtent(offset, view.Size - offset);
            foreach (var entry in Describe(offset, e, preallocated))
            {
                if (list.Count > 0 && CanMerge(list[^1], entry))
                    list[^1] = list[^1] with { Length = list[^1].Length + entry.Length };
                else
                    list.Add(entry);
            }
            offset += e.Length;
        }
        return new MapResult { Entries = list };
    }

    private static IEnumerable<MapEntry> Describe(long offset, Extent e, Dictionary<Format.QcowImage, bool> preallocated)
    {
        switch (e.Kind)
        {
            case ExtentKind.Data:
                // Like qemu: raw files are looked into for holes (which are not data); qcow2 data only when qemu
                // would take the image for metadata-preallocated, and for bytes past the end of the file.
                bool raw = e.IsRaw;
                var runs = raw || e.Source is { } img && LooksPreallocated(img, preallocated)
                    ? e.File!.HostRuns((long)e.HostOffset, e.Length)
                    : PastEnd(e.File!, (long)e.HostOffset, e.Length);
                foreach (var (host, length, hole) in runs)
                {
                    long start = offset + (host - (long)e.HostOffset);
                    yield return new MapEntry(start, length, e.Depth, true, hole, !(hole && raw), host, e.File!.Path, false);
                }
                break;
            case ExtentKind.Compressed:
                yield return new MapEntry(offset, e.Length, e.Depth, true, false, true, null, null, false);
                break;
            case ExtentKind.Zero:
                yield return new MapEntry(offset, e.Length, e.Depth, true, true, false, e.HostOffset != 0 ? (long)e.HostOffset : null, e.HostOffset != 0 ? e.File!.Path : null, false);
                break;
            default:
                yield return new MapEntry(offset, e.Length, e.Depth, false, true, false, e.HostOffset != 0 ? (long)e.HostOffset : null, e.HostOffset != 0 ? e.File!.Path : null, false);
                break;
        }
    }

    /// <summary>
    /// qemu's test for metadata preallocation: at least max(n*10/9, n+2) clusters have a refcount, where n is the
    /// number of clusters the file occupies on disk. qemu then looks into the host file for holes.
    /// </summary>
    private static bool LooksPreallocated(Format.QcowImage image, Dictionary<Format.QcowImage, bool> cache)
    {
        if (cache.TryGetValue(image, out bool known)) return known;
        bool result = false;
        if (image.File.AllocatedSize is { } allocated)
        {
            int cs = image.Header.ClusterSize;
            long real = allocated / cs;
            long threshold = Math.Max(real * 10 / 9, real + 2);
            long clusters = (image.File.Length + cs - 1) / cs;
            var refcounts = new Format.RefcountTable(image);
            long counted = 0;
            for (long c = 0; c < clusters && counted < threshold; c++)
                if (refcounts.Get(c) is > 0) counted++;
            result = counted >= threshold;
        }
        cache[image] = result;
        return result;
    }


    private static IEnumerable<(long, long, bool)> PastEnd(IO.ImageFile file, long host, long length)
    {
        long inFile = Math.Clamp(file.Length - host, 0, length);
        if (inFile > 0) yield return (host, inFile, false);
        if (inFile < length) yield return (host + inFile, length - inFile, true);
    }

    private static bool CanMerge(MapEntry a, MapEntry b) =>
        a.Depth == b.Depth && a.Present == b.Present && a.Zero == b.Zero && a.Data == b.Data && a.Compressed == b.Compressed &&
        a.File == b.File && (a.Offset is null ? b.Offset is null : b.Offset == a.Offset + a.Length);
}
