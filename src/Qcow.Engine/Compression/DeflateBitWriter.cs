namespace Qcow.Engine.Compression;

/// <summary>
/// Writes deflate's bit stream (least significant bit first) into a fixed span. Running out of room is not an error
/// here: it only means the stream would not be smaller than the cluster, so the caller stores the cluster as is.
/// </summary>
internal ref struct DeflateBitWriter
{
    private readonly Span<byte> _dest;
    private ulong _bits;
    private int _count;

    public DeflateBitWriter(Span<byte> dest) => _dest = dest;

    /// <summary>Whole bytes written so far.</summary>
    public int Position { get; private set; }

    /// <summary>Bits pending in the last, partial byte (0..7).</summary>
    public readonly int PendingBits => _count;

    /// <summary>True once a byte did not fit.</summary>
    public bool Overflow { get; private set; }

    /// <summary>Appends the low <paramref name="n"/> bits (at most 32) of <paramref name="value"/>.</summary>
    public void Write(uint value, int n)
    {
        _bits |= (ulong)value << _count;
        _count += n;
        while (_count >= 8)
        {
            Put((byte)_bits);
            _bits >>= 8;
            _count -= 8;
        }
    }

    /// <summary>Pads with zero bits to a byte boundary (stored blocks, and the end of the stream).</summary>
    public void AlignToByte()
    {
        if (_count > 0) Write(0, 8 - _count);
    }

    /// <summary>Appends bytes at a byte boundary.</summary>
    public void WriteBytes(ReadOnlySpan<byte> bytes)
    {
        if (Position + bytes.Length > _dest.Length) { Overflow = true; return; }
        bytes.CopyTo(_dest[Position..]);
        Position += bytes.Length;
    }

    private void Put(byte b)
    {
        if (Position < _dest.Length) _dest[Position++] = b;
        else Overflow = true;
    }
}
