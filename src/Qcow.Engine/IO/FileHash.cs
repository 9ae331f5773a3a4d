using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;

namespace Qcow.Engine.IO;

/// <summary>The SHA-256 of a file, read with large positional reads: the one way the engine and its users hash files.</summary>
public static class FileHash
{
    private const int Block = 1 << 20;

    /// <summary>
    /// The SHA-256 (64 lower-case hex digits) and length of the file at <paramref name="path"/>.
    /// <paramref name="progress"/> hears the bytes hashed so far.
    /// </summary>
    /// <exception cref="QcowException">The file cannot be read.</exception>
    public static (string Sha256, long Length) Sha256(string path, Action<long>? progress = null, CancellationToken cancel = default)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
            return Sha256(handle, progress, cancel);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QcowException(path, $"cannot read: {e.Message}", e);
        }
    }

    /// <summary>As <see cref="Sha256(string, Action{long}, CancellationToken)"/>, for an open file (read from offset 0).</summary>
    internal static (string Sha256, long Length) Sha256(SafeFileHandle handle, Action<long>? progress = null, CancellationToken cancel = default)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(Block);
        try
        {
            long offset = 0;
            while (true)
            {
                cancel.ThrowIfCancellationRequested();
                int n = RandomAccess.Read(handle, buffer.AsSpan(0, Block), offset);
                if (n <= 0) break;
                hash.AppendData(buffer, 0, n);
                offset += n;
                progress?.Invoke(offset);
            }
            return (Convert.ToHexStringLower(hash.GetHashAndReset()), offset);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
