using System.IO.Compression;

namespace Qcow.Engine.Compression;

/// <summary>
/// Compressed clusters (spec: "Compressed Clusters Descriptor", "compression_type"): one stream per cluster that
/// decompresses to exactly one cluster. Streams may be followed by unrelated bytes (the next stream shares the sector).
/// </summary>
internal static class ClusterCompression
{
    /// <summary>Decompresses a deflate stream (compression_type 0); see <see cref="TryDecompress"/>.</summary>
    public static string? TryInflate(ReadOnlySpan<byte> stream, Span<byte> cluster) => TryDecompress(ClusterCodec.Deflate, stream, cluster);

    /// <summary>Decompresses a zstd stream (compression_type 1); see <see cref="TryDecompress"/>.</summary>
    public static string? TryDecompressZstd(ReadOnlySpan<byte> stream, Span<byte> cluster) => TryDecompress(ClusterCodec.Zstd, stream, cluster);

    /// <summary>
    /// Decompresses <paramref name="stream"/> into <paramref name="cluster"/>, which it must fill exactly.
    /// Returns an error text instead of throwing so callers can name the file and the L2 entry.
    /// </summary>
    public static string? TryDecompress(ClusterCodec type, ReadOnlySpan<byte> stream, Span<byte> cluster)
    {
        try
        {
            return type == ClusterCodec.Zstd ? ZstdCodec.Decompress(stream, cluster) : InflateRaw(stream, cluster);
        }
        // In our words: the runtime's texts ("The archive entry was compressed using an unsupported compression
        // method") speak of archives, not of a cluster's stream.
        catch (InvalidDataException)
        {
            return $"corrupt {Name(type)} stream (not valid {(type == ClusterCodec.Zstd ? "zstd" : "raw deflate")} data)";
        }
        catch (Exception e) when (e is ZstdSharp.ZstdException or IOException or ArgumentException)
        {
            return $"corrupt {Name(type)} stream (not valid {(type == ClusterCodec.Zstd ? "zstd" : "raw deflate")} data)";
        }
    }

    /// <summary>
    /// Compresses one cluster into <paramref name="dest"/>; returns the stream length, or 0 when compression would not
    /// save space (the caller then stores the cluster uncompressed, as qemu does).
    /// </summary>
    public static int Compress(ClusterCodec type, ReadOnlySpan<byte> cluster, Span<byte> dest)
    {
        int n = type == ClusterCodec.Zstd ? ZstdCodec.Compress(cluster, dest) : DeflateCodec.Compress(cluster, dest);
        return n > 0 && n < cluster.Length ? n : 0;
    }

    /// <summary>qemu-img's name for the codec.</summary>
    private static string Name(ClusterCodec type) => type == ClusterCodec.Zstd ? "zstd" : "zlib";

    private static unsafe string? InflateRaw(ReadOnlySpan<byte> stream, Span<byte> cluster)
    {
        fixed (byte* p = stream)
        {
            using var input = new UnmanagedMemoryStream(p, stream.Length);
            using var inflate = new DeflateStream(input, CompressionMode.Decompress);
            int done = 0;
            while (done < cluster.Length)
            {
                int n = inflate.Read(cluster[done..]);
                if (n == 0) return $"deflate stream ended after {done} bytes, short of the {cluster.Length}-byte cluster";
                done += n;
            }
        }
        return null;
    }
}
