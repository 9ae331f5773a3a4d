using Microsoft.Win32.SafeHandles;
using Qcow.Engine.IO;

namespace Qcow.Engine.Writing;

/// <summary>
/// The clone side of an output: the ranges of the chunk being filled that hold a source's bytes unchanged, handed to
/// that chunk when it is submitted, and cloned rather than written by the writer thread (<see cref="CloneRanges"/>).
/// The first refusal turns cloning off for the rest of the output: the file systems do not change under one output.
/// </summary>
internal sealed class OutputClones
{
    private readonly CloneRanges _pending = new();
    private int _alignment;
    // Set by the writer thread; the producer reads it only as a hint (a stale read adds ranges the writer then writes).
    private bool _off;

    /// <summary>Whether a refusal has turned cloning off.</summary>
    public bool Off => Volatile.Read(ref _off);

    /// <summary>Records a range of the chunk being filled (offsets and length multiples of <paramref name="alignment"/>).</summary>
    public void Add(SafeFileHandle source, long sourceOffset, long targetOffset, int length, int alignment, bool unfilled)
    {
        _alignment = alignment;
        _pending.Add(source, sourceOffset, targetOffset, length, unfilled);
    }

    /// <summary>The ranges recorded since the last call, for the chunk being submitted; null when there are none.</summary>
    public CloneRange[]? Take()
    {
        if (_pending.Ranges.Count == 0) return null;
        var ranges = _pending.Ranges.ToArray();
        _pending.Clear();
        return ranges;
    }

    /// <summary>
    /// Puts a chunk's bytes at <paramref name="offset"/> of <paramref name="target"/>: its ranges cloned where the file
    /// system allows it (unfilled ones read from their source where it does not), the rest through <paramref name="write"/>.
    /// </summary>
    public void Write(SafeFileHandle target, long offset, Span<byte> bytes, CloneRange[] ranges, WriteAt write) =>
        CloneRanges.Apply(target, offset, bytes, ranges, _alignment, ref _off, write);
}
