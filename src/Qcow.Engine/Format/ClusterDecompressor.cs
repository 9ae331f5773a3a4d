namespace Qcow.Engine.Format;

/// <summary>
/// Decompresses one compressed cluster's stream (which may be followed by unrelated bytes) into
/// <paramref name="cluster"/>, which it must fill exactly; returns an error text, or null. Format reads the stream;
/// the codec comes from above (Format and Compression do not know each other).
/// </summary>
internal delegate string? ClusterDecompressor(ReadOnlySpan<byte> stream, Span<byte> cluster);
