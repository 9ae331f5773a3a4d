using ZstdSharp;

namespace Qcow.Engine.Compression;

/// <summary>zstd clusters: one frame that decompresses to exactly one cluster; trailing bytes are not ours.</summary>
internal static class ZstdCodec
{
    private const int Level = 3; // qemu's default (ZSTD_CLEVEL_DEFAULT).

    [ThreadStatic] private static Compressor? t_compressor;

    public static int Compress(ReadOnlySpan<byte> src, Span<byte> dest)
    {
        var c = t_compressor ??= new Compressor(Level);
        return c.TryWrap(src, dest, out int written) ? written : 0;
    }

    public static unsafe string? Decompress(ReadOnlySpan<byte> stream, Span<byte> cluster)
    {
        // Streaming decode stops at the end of the first frame, so bytes of the next cluster's stream are ignored.
        fixed (byte* p = stream)
        {
            using var input = new UnmanagedMemoryStream(p, stream.Length);
            using var z = new DecompressionStream(input, leaveOpen: true);
            int done = 0;
            while (done < cluster.Length)
            {
                int n = z.Read(cluster[done..]);
                if (n == 0) return $"zstd stream ended after {done} bytes, short of the {cluster.Length}-byte cluster";
                done += n;
            }
        }
        return null;
    }
}
