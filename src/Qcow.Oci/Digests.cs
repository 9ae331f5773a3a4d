using System.Security.Cryptography;

namespace Qcow.Oci;

/// <summary>OCI content digests; only <c>sha256:</c> is produced or accepted.</summary>
public static class Digests
{
    /// <summary>The prefix of every digest we handle.</summary>
    public const string Sha256Prefix = "sha256:";

    /// <summary>True for <c>sha256:</c> followed by 64 lower-case hex digits.</summary>
    public static bool IsSha256(string digest) =>
        digest.StartsWith(Sha256Prefix, StringComparison.Ordinal) && Engine.Chain.ChainManifest.IsSha256Hex(digest[Sha256Prefix.Length..]);

    /// <summary>The digest of <paramref name="bytes"/>.</summary>
    public static string Of(ReadOnlySpan<byte> bytes) => Sha256Prefix + Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary>The digest and length of a file, read in large blocks.</summary>
    public static (string Digest, long Size) OfFile(string path, Action<long>? progress = null, CancellationToken cancel = default)
    {
        var (sha, size) = Engine.IO.FileHash.Sha256(path, progress, cancel);
        return (Sha256Prefix + sha, size);
    }
}
