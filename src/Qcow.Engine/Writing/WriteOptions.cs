using System.Globalization;
using Qcow.Engine.Compression;
using Qcow.Engine.Format;

namespace Qcow.Engine.Writing;

/// <summary>How a qcow2 output is written. Parsed from qemu-img style <c>-o key=value,...</c> text.</summary>
public sealed record WriteOptions
{
    /// <summary>Bytes per cluster (512 B .. 2 MiB, a power of two). Default 64 KiB, as qemu.</summary>
    public int ClusterSize { get; init; } = 65536;
    /// <summary>3 (compat=1.1, the default) or 2 (compat=0.10).</summary>
    public int Version { get; init; } = 3;
    /// <summary>Compress data clusters (qemu-img convert -c).</summary>
    public bool Compress { get; init; }
    /// <summary>deflate ("zlib") or zstd. zstd needs compat=1.1.</summary>
    public CompressionType CompressionType { get; init; } = CompressionType.Deflate;

    /// <summary>
    /// Write uncompressed qcow2 files directly to the disk (O_DIRECT, on Linux where the file system allows it) rather
    /// than through the page cache. Off by default: with the bench chain, page-cache writes were as fast or faster;
    /// direct writes give steadier times and less CPU where the page cache is under pressure. Output bytes are the same
    /// either way. (The CLI sets it from <c>QCOW_DIRECT_IO=1</c>; the library reads no environment variable.)
    /// </summary>
    public bool DirectIo { get; init; }

    /// <summary>The defaults: v3, 64 KiB clusters, no compression.</summary>
    public static WriteOptions Default { get; } = new();

    /// <summary>log2 of <see cref="ClusterSize"/>.</summary>
    public int ClusterBits => System.Numerics.BitOperations.Log2((uint)ClusterSize);

    /// <summary>
    /// Applies <c>cluster_size=64k,compat=0.10,compression_type=zstd</c> style options on top of this one.
    /// Unknown keys and bad values are errors that name the key.
    /// </summary>
    public WriteOptions With(string? options)
    {
        var result = this;
        if (string.IsNullOrWhiteSpace(options)) return result;
        foreach (var part in options.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=');
            string key = eq < 0 ? part : part[..eq];
            string value = eq < 0 ? "" : part[(eq + 1)..];
            result = key switch
            {
                "cluster_size" => result with { ClusterSize = ParseClusterSize(value) },
                "compat" => result with
                {
                    Version = value switch
                    {
                        "0.10" or "v2" => 2,
                        "1.1" or "v3" => 3,
                        _ => throw new QcowException(null, $"-o compat={value}: use 0.10 or 1.1"),
                    },
                },
                "compression_type" => result with
                {
                    CompressionType = value switch
                    {
                        "zlib" or "deflate" => CompressionType.Deflate,
                        "zstd" => CompressionType.Zstd,
                        _ => throw new QcowException(null, $"-o compression_type={value}: use zlib or zstd"),
                    },
                },
                _ => throw new QcowException(null, $"-o {key}: unknown option (known: cluster_size, compat, compression_type)"),
            };
        }
        result.Validate();
        return result;
    }

    /// <summary>The codec <see cref="CompressionType"/> names, for the compressor.</summary>
    internal ClusterCodec Codec => CompressionType == CompressionType.Zstd ? ClusterCodec.Zstd : ClusterCodec.Deflate;

    /// <summary>Checks the combination is one qemu accepts.</summary>
    public void Validate()
    {
        if (ClusterSize < 512 || ClusterSize > 2 << 20 || (ClusterSize & (ClusterSize - 1)) != 0)
            throw new QcowException(null, $"cluster_size {ClusterSize}: must be a power of two from 512 to 2M");
        if (Version != 2 && Version != 3)
            throw new QcowException(null, $"compat: version {Version} is not 2 (0.10) or 3 (1.1)");
        if (Version == 2 && CompressionType != CompressionType.Deflate)
            throw new QcowException(null, "compression_type=zstd needs compat=1.1");
    }

    private static int ParseClusterSize(string value)
    {
        string v = value.Trim().ToLowerInvariant();
        long mult = 1;
        if (v.EndsWith('k')) { mult = 1024; v = v[..^1]; }
        else if (v.EndsWith('m')) { mult = 1 << 20; v = v[..^1]; }
        if (!long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n * mult > int.MaxValue)
            throw new QcowException(null, $"-o cluster_size={value}: not a size (e.g. 65536, 64k, 2M)");
        return (int)(n * mult);
    }
}
