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
    /// <summary>Maps <paramref name="image"/> at <paramref name="snapshot"/> (null: current state).</summary>
    public static IReadOnlyList<MapEntry> Run(string image, string? snapshot = null, BackingPolicy? policy = null)
    {
        using var set = new ImageSet(policy);
        var view = set.View(image, snapshot);
        int chainLength = set.Chain(image).Count;
        var list = new List<MapEntry>();
        long offset = 0;
        while (offset < view.Size)
        {
            var e = view.GetExtent(offset, view.Size - offset);
            var entry = e.Kind switch
            {
                ExtentKind.Data => new MapEntry(offset, e.Length, e.Depth, true, false, true, (long)e.HostOffset, e.File!.Path, false),
                ExtentKind.Compressed => new MapEntry(offset, e.Length, e.Depth, true, false, true, null, null, true),
                ExtentKind.Zero => new MapEntry(offset, e.Length, e.Depth, true, true, false, null, null, false),
                _ => new MapEntry(offset, e.Length, chainLength, false, true, false, null, null, false),
            };
            if (list.Count > 0 && CanMerge(list[^1], entry))
                list[^1] = list[^1] with { Length = list[^1].Length + entry.Length };
            else
                list.Add(entry);
            offset += e.Length;
        }
        return list;
    }

    private static bool CanMerge(MapEntry a, MapEntry b) =>
        a.Depth == b.Depth && a.Present == b.Present && a.Zero == b.Zero && a.Data == b.Data && a.Compressed == b.Compressed &&
        a.File == b.File && (a.Offset is null ? b.Offset is null : b.Offset == a.Offset + a.Length);
}
