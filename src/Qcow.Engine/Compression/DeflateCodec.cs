namespace Qcow.Engine.Compression;

/// <summary>
/// Deflate clusters as qemu's zlib compression type stores them: raw deflate that qemu inflates with a 4 KiB window
/// (windowBits -12). .NET's DeflateStream always writes with a 32 KiB window, and the system zlib differs between
/// distributions (zlib-ng's compatible library gives other bytes), so clusters are compressed by our own encoder: the
/// same bytes on every machine.
/// </summary>
internal static class DeflateCodec
{
    /// <summary>zlib's default level, which qemu uses. Part of the output format: changing it changes the bytes.</summary>
    public const int Level = 6;

    [ThreadStatic] private static DeflateEncoder? t_encoder;

    /// <summary>Compresses <paramref name="src"/> into <paramref name="dest"/>; 0 when it does not fit.</summary>
    public static int Compress(ReadOnlySpan<byte> src, Span<byte> dest)
    {
        int n = (t_encoder ??= new DeflateEncoder(Level)).Encode(src, dest);
        return n < 0 ? 0 : n;
    }
}
