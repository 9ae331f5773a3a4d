using Microsoft.Win32.SafeHandles;

namespace Qcow.Engine.IO;

/// <summary>
/// <see cref="Length"/> bytes at <see cref="SourceOffset"/> of <see cref="Source"/>, to go to <see cref="TargetOffset"/>
/// of an output. <see cref="Unfilled"/>: the output's buffer does not hold them (nothing needed them); they are read
/// from the source only if the clone is refused.
/// </summary>
internal readonly record struct CloneRange(SafeFileHandle Source, long SourceOffset, long TargetOffset, long Length,
    bool Unfilled = false);

/// <summary>Writes <paramref name="bytes"/> at <paramref name="offset"/> of the output.</summary>
internal delegate void WriteAt(long offset, ReadOnlySpan<byte> bytes);

/// <summary>
/// The ranges of an output that hold a source's bytes unchanged and may be cloned from it rather than written, in
/// output order. A range that continues the last one (same source, both offsets contiguous) extends it, so a run of
/// clusters is one clone call. The output's bytes are still all at hand (they are hashed); cloning only spares writing
/// them, and wherever it cannot be done they are written.
/// </summary>
internal sealed class CloneRanges
{
    private readonly List<CloneRange> _ranges = [];

    /// <summary>The ranges, in output order.</summary>
    public IReadOnlyList<CloneRange> Ranges => _ranges;

    /// <summary>Adds a range, merging it into the last one when it continues it.</summary>
    public void Add(SafeFileHandle source, long sourceOffset, long targetOffset, long length, bool unfilled = false)
    {
        if (length <= 0) return;
        if (_ranges.Count > 0 && _ranges[^1] is var last && ReferenceEquals(last.Source, source) && last.Unfilled == unfilled &&
            last.SourceOffset + last.Length == sourceOffset && last.TargetOffset + last.Length == targetOffset)
        {
            _ranges[^1] = last with { Length = last.Length + length };
            return;
        }
        if (_ranges.Count > 0 && targetOffset < _ranges[^1].TargetOffset + _ranges[^1].Length)
            throw new ArgumentException("clone ranges must be added in output order, without overlap", nameof(targetOffset));
        _ranges.Add(new CloneRange(source, sourceOffset, targetOffset, length, unfilled));
    }

    /// <summary>Forgets every range.</summary>
    public void Clear() => _ranges.Clear();

    /// <summary>
    /// Puts <paramref name="data"/> at <paramref name="offset"/> of <paramref name="target"/>: the parts that
    /// <paramref name="ranges"/> (in output order) cover are cloned, everything else, and any range that cannot be
    /// cloned, goes through <paramref name="write"/>. After the first refusal <paramref name="cloneOff"/> is set and
    /// nothing more is tried (the file systems do not change under one output); an unfilled range is then read from its
    /// source into <paramref name="data"/> first. Returns the bytes cloned.
    /// </summary>
    public static long Apply(SafeFileHandle target, long offset, Span<byte> data, IEnumerable<CloneRange> ranges,
        int alignment, ref bool cloneOff, WriteAt write)
    {
        long end = offset + data.Length, pos = offset, cloned = 0;
        foreach (var r in ranges)
        {
            // The part of the range inside this piece of the output.
            long from = Math.Max(r.TargetOffset, offset), to = Math.Min(r.TargetOffset + r.Length, end);
            if (from >= to) continue;
            if (from < pos) throw new ArgumentException("clone ranges overlap", nameof(ranges));
            if (cloneOff || !ExtentClone.TryClone(r.Source, r.SourceOffset + (from - r.TargetOffset), target, from, to - from, alignment))
            {
                cloneOff = true;
                if (r.Unfilled) Fill(r, from, data[(int)(from - offset)..(int)(to - offset)]);
                continue;
            }
            if (from > pos) write(pos, data[(int)(pos - offset)..(int)(from - offset)]);
            cloned += to - from;
            pos = to;
        }
        if (pos < end) write(pos, data[(int)(pos - offset)..]);
        return cloned;
    }

    /// <summary>Reads the source bytes of <paramref name="r"/> for output offsets from <paramref name="from"/> into <paramref name="into"/>.</summary>
    private static void Fill(in CloneRange r, long from, Span<byte> into)
    {
        long at = r.SourceOffset + (from - r.TargetOffset);
        while (!into.IsEmpty)
        {
            int n = RandomAccess.Read(r.Source, into, at);
            if (n <= 0) throw new IOException("a source ended inside a cluster being copied");
            into = into[n..];
            at += n;
        }
    }
}
