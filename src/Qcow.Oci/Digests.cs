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
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            long total = 0;
            int n;
            while ((n = stream.Read(buffer, 0, 1 << 20)) > 0)
            {
                cancel.ThrowIfCancellationRequested();
                hash.AppendData(buffer, 0, n);
                total += n;
                progress?.Invoke(total);
            }
            return (Sha256Prefix + Convert.ToHexStringLower(hash.GetHashAndReset()), total);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
