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

    [ThreadStatic] private static Decompressor? t_decompressor;

    public static unsafe string? Decompress(ReadOnlySpan<byte> stream, Span<byte> cluster)
    {
        // qemu (qcow2_zstd_decompress) takes one frame that must end exactly at the end of the cluster; bytes after
        // the frame belong to the next cluster's stream. So: find the frame, then decode it whole into one cluster.
        nuint frame;
        fixed (byte* p = stream)
            frame = ZstdSharp.Unsafe.Methods.ZSTD_findFrameCompressedSize(p, (nuint)stream.Length);
        if (ZstdSharp.Unsafe.Methods.ZSTD_isError(frame))
            return "corrupt zstd stream (no complete frame within the compressed cluster's sectors)";
        var d = t_decompressor ??= new Decompressor();
        if (!d.TryUnwrap(stream[..(int)frame], cluster, out int written))
            return "zstd stream decompresses to more than one cluster";
        if (written != cluster.Length)
            return $"zstd stream ended after {written} bytes, short of the {cluster.Length}-byte cluster";
        return null;
    }
}
