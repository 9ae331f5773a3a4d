using Qcow.Engine.IO;

namespace Qcow.Engine.Writing;

/// <summary>
/// An output written to a temporary file beside its target and renamed over it only when complete and flushed, so a
/// crash or an error never leaves a half-written file under the target's name. Temporary names carry the process id,
/// so temporaries left by a killed process are recognised and removed by the next run.
/// </summary>
public sealed class OutputFile : IDisposable
{
    private const string TempMarker = ".qcow-tmp-";
    private bool _committed;

    private readonly Microsoft.Win32.SafeHandles.SafeFileHandle _handle;

    private OutputFile(string target, string temp, FileStream stream)
    {
        TargetPath = target;
        TempPath = temp;
        // Taken once, while the buffer is empty: reading the property later would flush the stream each time.
        _handle = stream.SafeFileHandle;
        Output = new OutputStream(stream, target);
    }

    /// <summary>The final path.</summary>
    public string TargetPath { get; }
    /// <summary>The temporary file being written.</summary>
    public string TempPath { get; }
    /// <summary>The stream over the temporary file; its write errors are <see cref="QcowException"/>s naming the target.</summary>
    public Stream Stream => Output;

    /// <summary>The same stream, with its handle and a flush to disk.</summary>
    internal OutputStream Output { get; }

    /// <summary>Creates the temporary file for <paramref name="target"/> (its folder is created if needed).</summary>
    public static OutputFile Create(string target)
    {
        string full = Path.GetFullPath(target);
        string folder = Path.GetDirectoryName(full)!;
        try
        {
            Directory.CreateDirectory(folder);
            if (Directory.Exists(full)) throw new QcowException(full, "output path is a folder");
            RemoveStaleTemporaries(full);
            string temp = Path.Combine(folder, $".{Path.GetFileName(full)}{TempMarker}{Environment.ProcessId}-{Guid.NewGuid():N}");
            var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.None);
            return new OutputFile(full, temp, stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QcowException(full, $"cannot create output: {e.Message}");
        }
    }

    /// <summary>Flushes to disk, optionally hashes the bytes, and renames over the target. Returns the SHA-256 (hex) or null.</summary>
    public string? Commit(bool computeSha256) => Commit(computeSha256, null);

    /// <summary>As <see cref="Commit(bool)"/>, returning <paramref name="knownSha256"/> (hashed while writing) when given.</summary>
    internal string? Commit(bool computeSha256, string? knownSha256)
    {
        if (knownSha256 is not null) computeSha256 = false;
        try
        {
            Stream.Flush();
            string? sha = null;
            if (computeSha256)
            {
                // Hash the bytes back from the page cache while the disk takes them: fsync waits on the device,
                // hashing on the CPU, so doing both at once costs the longer of the two instead of their sum.
                var handle = _handle;
                var sync = Task.Run(() => RandomAccess.FlushToDisk(handle));
                try
                {
                    sha = FileHash.Sha256(handle).Sha256;
                }
                finally
                {
                    sync.GetAwaiter().GetResult();
                }
            }
            else
            {
                Output.Flush(flushToDisk: true);
            }
            Stream.Dispose();
            File.Move(TempPath, TargetPath, overwrite: true);
            _committed = true;
            return sha ?? knownSha256;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QcowException(TargetPath, $"cannot write output: {e.Message}");
        }
    }

    /// <summary>Removes the temporary file unless it was committed.</summary>
    public void Dispose()
    {
        try
        {
            Stream.Dispose();
        }
        catch (Exception e) when (!_committed && e is IOException or QcowException)
        {
            // Abandoned: disposing retries the buffered bytes a full disk refused. They are not wanted, and that
            // second failure must not hide the first one or keep the temporary file.
        }
        if (!_committed)
        {
            try { File.Delete(TempPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    /// <summary>Deletes temporaries for <paramref name="target"/> whose writing process no longer runs.</summary>
    internal static void RemoveStaleTemporaries(string target)
    {
        string folder = Path.GetDirectoryName(target)!;
        string prefix = $".{Path.GetFileName(target)}{TempMarker}";
        foreach (var f in Directory.EnumerateFiles(folder, prefix + "*"))
        {
            string rest = Path.GetFileName(f)[prefix.Length..];
            int dash = rest.IndexOf('-');
            if (dash <= 0 || !int.TryParse(rest[..dash], out int pid)) continue;
            if (pid != Environment.ProcessId && IsRunning(pid)) continue;
            if (pid == Environment.ProcessId) continue;
            try { File.Delete(f); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
