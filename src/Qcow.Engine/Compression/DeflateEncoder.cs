using static Qcow.Engine.Compression.DeflateTables;

namespace Qcow.Engine.Compression;

/// <summary>
/// A raw deflate encoder (RFC 1951) for whole clusters whose output depends only on the input and the level: the same
/// bytes on every OS, CPU and runtime. Matches reach back at most 4096 bytes, the window qemu inflates with
/// (windowBits -12). LZ77 with hash chains and one-step lazy matching, bounded per level like zlib's levels; each
/// block of up to 16384 symbols is sent with a dynamic code, the fixed code or stored, whichever is shortest.
/// </summary>
internal sealed class DeflateEncoder
{
    /// <summary>The longest distance emitted: qemu's 4 KiB window.</summary>
    public const int MaxDistance = 4096;
    private const int WindowMask = MaxDistance - 1;
    private const int BlockSymbols = 16384;
    private const int MaxHashBits = 15;
    private const int MaxStored = 65535;

    // Per level: a match this long cuts the chain search to a quarter (good), no lazy search after a match this long
    // (lazy), stop at a match this long (nice), and at most this many chain steps (chain). zlib's values.
    private static readonly (int Good, int Lazy, int Nice, int Chain)[] Levels =
    [
        (0, 0, 0, 0), (4, 4, 8, 4), (4, 5, 16, 8), (4, 6, 32, 32), (4, 4, 16, 16), (8, 16, 32, 32),
        (8, 16, 128, 128), (8, 32, 128, 256), (32, 128, 258, 1024), (32, 258, 258, 4096),
    ];

    private readonly int _good, _lazy, _nice, _chain;
    private readonly int[] _head = new int[1 << MaxHashBits];
    private readonly int[] _prev = new int[MaxDistance];
    private readonly ushort[] _symLength = new ushort[BlockSymbols]; // literal byte, or match length when distance > 0
    private readonly ushort[] _symDistance = new ushort[BlockSymbols];
    private readonly int[] _litFreq = new int[LiteralLengthSymbols];
    private readonly int[] _distFreq = new int[DistanceSymbols];
    private readonly int[] _clFreq = new int[CodeLengthSymbols];
    private readonly byte[] _litLen = new byte[LiteralLengthSymbols];
    private readonly byte[] _distLen = new byte[DistanceSymbols];
    private readonly byte[] _clLen = new byte[CodeLengthSymbols];
    private readonly ushort[] _litCode = new ushort[288];
    private readonly ushort[] _distCode = new ushort[DistanceSymbols];
    private readonly ushort[] _clCode = new ushort[CodeLengthSymbols];
    private readonly ushort[] _fixedLitCode = new ushort[288];
    private readonly ushort[] _fixedDistCode = new ushort[DistanceSymbols];
    private readonly byte[] _lengths = new byte[LiteralLengthSymbols + DistanceSymbols];
    private readonly byte[] _rleSymbol = new byte[LiteralLengthSymbols + DistanceSymbols];
    private readonly byte[] _rleExtra = new byte[LiteralLengthSymbols + DistanceSymbols];
    private readonly HuffmanCode _huffman = new(LiteralLengthSymbols, 15);
    private int _symbols, _hashBits, _blockStart, _emitted;

    public DeflateEncoder(int level)
    {
        if (level < 1 || level > 9) throw new ArgumentOutOfRangeException(nameof(level), level, "deflate level 1..9");
        (_good, _lazy, _nice, _chain) = Levels[level];
        HuffmanCode.AssignCodes(FixedLiteralLengths, _fixedLitCode);
        HuffmanCode.AssignCodes(FixedDistanceLengths, _fixedDistCode);
    }

    /// <summary>For tests: how often each length code (0..28) and distance code was sent in a Huffman block, over all calls.</summary>
    internal long[] LengthCodesEmitted { get; } = new long[29];
    /// <summary>For tests: see <see cref="LengthCodesEmitted"/>.</summary>
    internal long[] DistanceCodesEmitted { get; } = new long[DistanceSymbols];
    /// <summary>For tests: the longest match distance emitted, over all calls.</summary>
    internal int LongestDistanceEmitted { get; private set; }

    /// <summary>
    /// Compresses <paramref name="input"/> into <paramref name="dest"/> as one raw deflate stream; returns its length,
    /// or -1 when it does not fit.
    /// </summary>
    public int Encode(ReadOnlySpan<byte> input, Span<byte> dest)
    {
        var w = new DeflateBitWriter(dest);
        _symbols = 0; _blockStart = 0; _emitted = 0;
        Array.Clear(_litFreq); Array.Clear(_distFreq);
        // The hash table grows with the input (a 512-byte cluster does not clear 128 KiB), and only with the input.
        _hashBits = Math.Clamp(64 - (int)ulong.LeadingZeroCount((ulong)Math.Max(input.Length, 1)), 8, MaxHashBits);
        _head.AsSpan(0, 1 << _hashBits).Fill(-1);

        int n = input.Length, pos = 0, prevLength = 0, prevDistance = 0;
        bool pending = false; // a literal or match found at pos - 1 waits to see whether pos matches longer
        while (pos < n)
        {
            int length = 0, distance = 0;
            if (pos + MinMatch <= n)
            {
                int candidate = Insert(input, pos);
                if (candidate >= 0 && prevLength < _lazy)
                    (length, distance) = LongestMatch(input, pos, candidate, Math.Max(prevLength, MinMatch - 1),
                        prevLength >= _good ? _chain >> 2 : _chain);
            }
            if (pending && prevLength >= MinMatch && length <= prevLength)
            {
                AddMatch(prevLength, prevDistance, input, ref w);
                int end = pos - 1 + prevLength;
                for (int p = pos + 1; p < end && p + MinMatch <= n; p++) Insert(input, p);
                pos = end;
                pending = false;
                prevLength = 0;
            }
            else
            {
                if (pending) AddLiteral(input[pos - 1], input, ref w);
                pending = true;
                prevLength = length;
                prevDistance = distance;
                pos++;
            }
        }
        if (pending) AddLiteral(input[n - 1], input, ref w);
        FlushBlock(input, ref w, last: true);
        w.AlignToByte();
        return w.Overflow ? -1 : w.Position;
    }

    private int Insert(ReadOnlySpan<byte> input, int pos)
    {
        uint key = input[pos] | (uint)input[pos + 1] << 8 | (uint)input[pos + 2] << 16;
        int h = (int)((key * 2654435761u) >> (32 - _hashBits));
        int candidate = _head[h];
        _prev[pos & WindowMask] = candidate;
        _head[h] = pos;
        return candidate;
    }

    /// <summary>The longest match longer than <paramref name="best"/> within the window, or (0, 0).</summary>
    private (int Length, int Distance) LongestMatch(ReadOnlySpan<byte> input, int pos, int candidate, int best, int chain)
    {
        int maxLength = Math.Min(MaxMatch, input.Length - pos);
        if (maxLength <= best) return (0, 0);
        int limit = pos - MaxDistance, found = best, foundDistance = 0;
        var here = input.Slice(pos, maxLength);
        while (candidate >= 0 && candidate >= limit && chain-- > 0)
        {
            if (input[candidate + found] == here[found])
            {
                int len = here.CommonPrefixLength(input.Slice(candidate, maxLength));
                if (len > found)
                {
                    found = len;
                    foundDistance = pos - candidate;
                    if (len >= _nice || len == maxLength) break;
                }
            }
            // The ring slot of a position a full window back has been reused; chains only ever go backwards.
            int next = _prev[candidate & WindowMask];
            if (next >= candidate) break;
            candidate = next;
        }
        return foundDistance == 0 ? (0, 0) : (found, foundDistance);
    }

    private void AddLiteral(byte b, ReadOnlySpan<byte> input, ref DeflateBitWriter w)
    {
        _symLength[_symbols] = b;
        _symDistance[_symbols++] = 0;
        _litFreq[b]++;
        _emitted++;
        if (_symbols == BlockSymbols) FlushBlock(input, ref w, last: false);
    }

    private void AddMatch(int length, int distance, ReadOnlySpan<byte> input, ref DeflateBitWriter w)
    {
        _symLength[_symbols] = (ushort)length;
        _symDistance[_symbols++] = (ushort)distance;
        _litFreq[257 + LengthCode[length]]++;
        _distFreq[DistanceCode[distance]]++;
        _emitted += length;
        if (_symbols == BlockSymbols) FlushBlock(input, ref w, last: false);
    }

    private void FlushBlock(ReadOnlySpan<byte> input, ref DeflateBitWriter w, bool last)
    {
        _litFreq[EndOfBlock] = 1;
        _huffman.BuildLengths(_litFreq, 15, _litLen);
        _huffman.BuildLengths(_distFreq, 15, _distLen);
        int hlit = LiteralLengthSymbols, hdist = DistanceSymbols;
        while (hlit > 257 && _litLen[hlit - 1] == 0) hlit--;
        while (hdist > 1 && _distLen[hdist - 1] == 0) hdist--;
        int rle = RunLengths(hlit, hdist);
        _huffman.BuildLengths(_clFreq, 7, _clLen);
        int hclen = CodeLengthSymbols;
        while (hclen > 4 && _clLen[CodeLengthOrder[hclen - 1]] == 0) hclen--;

        long dynamicBits = 3 + 5 + 5 + 4 + 3L * hclen + DataBits(_litLen, _distLen);
        for (int i = 0; i < rle; i++)
            dynamicBits += _clLen[_rleSymbol[i]] + (_rleSymbol[i] switch { 16 => 2, 17 => 3, 18 => 7, _ => 0 });
        long fixedBits = 3 + DataBits(FixedLiteralLengths, FixedDistanceLengths);
        int bytes = _emitted - _blockStart;
        int storedBlocks = Math.Max(1, (bytes + MaxStored - 1) / MaxStored);
        long storedBits = ((8 - (w.PendingBits + 3) % 8) % 8) + 5L * (storedBlocks - 1) + 35L * storedBlocks + 8L * bytes;

        if (storedBits <= fixedBits && storedBits <= dynamicBits)
        {
            WriteStored(input.Slice(_blockStart, bytes), ref w, last);
        }
        else if (fixedBits <= dynamicBits)
        {
            w.Write(last ? 1u : 0u, 1);
            w.Write(1, 2);
            WriteData(_fixedLitCode, FixedLiteralLengths, _fixedDistCode, FixedDistanceLengths, ref w);
        }
        else
        {
            w.Write(last ? 1u : 0u, 1);
            w.Write(2, 2);
            w.Write((uint)(hlit - 257), 5);
            w.Write((uint)(hdist - 1), 5);
            w.Write((uint)(hclen - 4), 4);
            for (int i = 0; i < hclen; i++) w.Write(_clLen[CodeLengthOrder[i]], 3);
            HuffmanCode.AssignCodes(_clLen, _clCode);
            for (int i = 0; i < rle; i++)
            {
                int s = _rleSymbol[i];
                w.Write(_clCode[s], _clLen[s]);
                if (s >= 16) w.Write(_rleExtra[i], s == 16 ? 2 : s == 17 ? 3 : 7);
            }
            HuffmanCode.AssignCodes(_litLen, _litCode);
            HuffmanCode.AssignCodes(_distLen, _distCode);
            WriteData(_litCode, _litLen, _distCode, _distLen, ref w);
        }
        _symbols = 0;
        _blockStart = _emitted;
        Array.Clear(_litFreq);
        Array.Clear(_distFreq);
    }

    /// <summary>
    /// The code lengths of both codes as code length symbols (RFC 1951, 3.2.7): 16 repeats the previous length 3..6
    /// times, 17 and 18 are runs of 3..10 and 11..138 zeros. Fills <see cref="_clFreq"/>; returns the symbol count.
    /// </summary>
    private int RunLengths(int hlit, int hdist)
    {
        var all = _lengths.AsSpan(0, hlit + hdist);
        _litLen.AsSpan(0, hlit).CopyTo(all);
        _distLen.AsSpan(0, hdist).CopyTo(all[hlit..]);
        Array.Clear(_clFreq);
        int count = 0;
        for (int i = 0; i < all.Length;)
        {
            byte v = all[i];
            int run = 1;
            while (i + run < all.Length && all[i + run] == v) run++;
            i += run;
            if (v == 0)
            {
                for (; run >= 11; run -= Math.Min(run, 138)) Emit(18, Math.Min(run, 138) - 11);
                if (run >= 3) { Emit(17, run - 3); run = 0; }
            }
            else
            {
                Emit(v, 0);
                for (run--; run >= 3; run -= Math.Min(run, 6)) Emit(16, Math.Min(run, 6) - 3);
            }
            for (; run > 0; run--) Emit(v, 0);
        }
        return count;

        void Emit(int symbol, int extra)
        {
            _rleSymbol[count] = (byte)symbol;
            _rleExtra[count++] = (byte)extra;
            _clFreq[symbol]++;
        }
    }

    private long DataBits(ReadOnlySpan<byte> litLen, ReadOnlySpan<byte> distLen)
    {
        long bits = 0;
        for (int s = 0; s < 257; s++) bits += (long)_litFreq[s] * litLen[s];
        for (int c = 0; c < 29; c++) bits += (long)_litFreq[257 + c] * (litLen[257 + c] + LengthExtra[c]);
        for (int c = 0; c < DistanceSymbols; c++) bits += (long)_distFreq[c] * (distLen[c] + DistanceExtra[c]);
        return bits;
    }

    private void WriteData(ReadOnlySpan<ushort> litCode, ReadOnlySpan<byte> litLen, ReadOnlySpan<ushort> distCode,
        ReadOnlySpan<byte> distLen, ref DeflateBitWriter w)
    {
        for (int i = 0; i < _symbols; i++)
        {
            int distance = _symDistance[i];
            if (distance == 0)
            {
                int b = _symLength[i];
                w.Write(litCode[b], litLen[b]);
                continue;
            }
            int length = _symLength[i];
            int lc = LengthCode[length];
            w.Write(litCode[257 + lc], litLen[257 + lc]);
            if (LengthExtra[lc] > 0) w.Write((uint)(length - LengthBase[lc]), LengthExtra[lc]);
            int dc = DistanceCode[distance];
            w.Write(distCode[dc], distLen[dc]);
            if (DistanceExtra[dc] > 0) w.Write((uint)(distance - DistanceBase[dc]), DistanceExtra[dc]);
            LengthCodesEmitted[lc]++;
            DistanceCodesEmitted[dc]++;
            if (distance > LongestDistanceEmitted) LongestDistanceEmitted = distance;
        }
        w.Write(litCode[EndOfBlock], litLen[EndOfBlock]);
    }

    private static void WriteStored(ReadOnlySpan<byte> bytes, ref DeflateBitWriter w, bool last)
    {
        do
        {
            int len = Math.Min(bytes.Length, MaxStored);
            bool final = last && len == bytes.Length;
            w.Write(final ? 1u : 0u, 1);
            w.Write(0, 2);
            w.AlignToByte();
            w.Write((uint)len, 16);
            w.Write((uint)(len ^ 0xFFFF), 16);
            w.WriteBytes(bytes[..len]);
            bytes = bytes[len..];
        }
        while (!bytes.IsEmpty);
    }
}
