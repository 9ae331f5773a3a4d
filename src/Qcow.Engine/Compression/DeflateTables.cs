namespace Qcow.Engine.Compression;

/// <summary>
/// The fixed tables of raw deflate (RFC 1951, 3.2.5 and 3.2.6): length and distance codes with their extra bits,
/// the fixed Huffman code lengths, and the order code length code lengths are sent in.
/// </summary>
internal static class DeflateTables
{
    public const int EndOfBlock = 256;
    public const int LiteralLengthSymbols = 286;
    public const int DistanceSymbols = 30;
    public const int CodeLengthSymbols = 19;
    public const int MinMatch = 3;
    public const int MaxMatch = 258;

    public static ReadOnlySpan<ushort> LengthBase =>
        [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
    public static ReadOnlySpan<byte> LengthExtra =>
        [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    public static ReadOnlySpan<ushort> DistanceBase =>
        [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
         6145, 8193, 12289, 16385, 24577];
    public static ReadOnlySpan<byte> DistanceExtra =>
        [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];

    /// <summary>The order in which the code length code's lengths are sent.</summary>
    public static ReadOnlySpan<byte> CodeLengthOrder => [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

    /// <summary>Length code index (0..28, symbol 257 + index) of each match length 0..258.</summary>
    public static readonly byte[] LengthCode = BuildLengthCode();

    /// <summary>Distance code of each distance 0..<see cref="DeflateEncoder.MaxDistance"/>.</summary>
    public static readonly byte[] DistanceCode = BuildDistanceCode();

    /// <summary>Lengths of the fixed literal/length code (block type 01).</summary>
    public static readonly byte[] FixedLiteralLengths = BuildFixedLiteralLengths();

    /// <summary>Lengths of the fixed distance code: five bits each.</summary>
    public static readonly byte[] FixedDistanceLengths = Enumerable.Repeat((byte)5, DistanceSymbols).ToArray();

    private static byte[] BuildLengthCode()
    {
        var t = new byte[MaxMatch + 1];
        for (int code = 0; code < LengthBase.Length; code++)
        {
            int end = code + 1 < LengthBase.Length ? LengthBase[code + 1] : MaxMatch + 1;
            // Length 258 has a code of its own (285), not the last slot of code 284.
            if (code == LengthBase.Length - 2) end = MaxMatch;
            for (int len = LengthBase[code]; len < end; len++) t[len] = (byte)code;
        }
        return t;
    }

    private static byte[] BuildDistanceCode()
    {
        var t = new byte[DeflateEncoder.MaxDistance + 1];
        for (int code = 0; code < DistanceBase.Length && DistanceBase[code] <= DeflateEncoder.MaxDistance; code++)
        {
            int end = Math.Min(DistanceBase[code] + (1 << DistanceExtra[code]), DeflateEncoder.MaxDistance + 1);
            for (int d = DistanceBase[code]; d < end; d++) t[d] = (byte)code;
        }
        return t;
    }

    private static byte[] BuildFixedLiteralLengths()
    {
        var t = new byte[288];
        for (int i = 0; i < 288; i++) t[i] = (byte)(i < 144 ? 8 : i < 256 ? 9 : i < 280 ? 7 : 8);
        return t;
    }
}
