using System.Security.Cryptography;

namespace Qcow.Engine.Tests.Infrastructure;

/// <summary>The tests' one file hash: to pin outputs and to show sources are never modified.</summary>
public static class FileHash
{
    /// <summary>SHA-256 of a file, lower-case hex (as chain.json records it).</summary>
    public static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}
