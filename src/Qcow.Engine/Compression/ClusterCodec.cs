namespace Qcow.Engine.Compression;

/// <summary>
/// The codecs of compressed clusters. The values are qcow2's compression_type values, but Compression does not
/// know the format: whoever reads a header (Views, Writing) says which codec it names.
/// </summary>
internal enum ClusterCodec : byte
{
    /// <summary>Raw deflate (qemu's "zlib"), compression_type 0.</summary>
    Deflate = 0,
    /// <summary>Zstandard, compression_type 1.</summary>
    Zstd = 1,
}
