using System.Globalization;
using System.Runtime.InteropServices;
using Qcow.Engine.IO;

namespace Qcow.Build.Tasks;

/// <summary>
/// SHA-256 of input files (QcowHashInputs=true), cached in obj/ keyed by full path, size, last write time and inode:
/// a no-op build hashes nothing again, and a file replaced by another one (new inode) is hashed again even when size
/// and time match. Hashing observes cancellation (Ctrl+C) between reads.
/// </summary>
internal sealed class InputHashes
{
    private readonly string _cacheFile;
    private readonly Dictionary<string, (long Size, long Ticks, ulong Inode, string Sha)> _entries = new(StringComparer.Ordinal);
    private bool _dirty;

    private InputHashes(string cacheFile) => _cacheFile = cacheFile;

    /// <summary>The cache in <paramref name="cacheFile"/>; an unreadable or missing cache is empty.</summary>
    public static InputHashes Load(string cacheFile)
    {
        var hashes = new InputHashes(cacheFile);
        try
        {
            if (!File.Exists(cacheFile)) return hashes;
            foreach (var line in File.ReadLines(cacheFile))
            {
                // sha size ticks inode path (the path last: it may contain spaces)
                var parts = line.Split(' ', 5);
                if (parts.Length == 5 && parts[0].Length == 64
                    && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long size)
                    && long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out long ticks)
                    && ulong.TryParse(parts[3], NumberStyles.None, CultureInfo.InvariantCulture, out ulong inode))
                    hashes._entries[parts[4]] = (size, ticks, inode, parts[0]);
            }
        }
        catch (IOException)
        {
            hashes._entries.Clear();
        }
        return hashes;
    }

    /// <summary>The SHA-256 of <paramref name="path"/>, from the cache when size, time and inode are unchanged.</summary>
    public string Get(string path, CancellationToken cancel)
    {
        var info = new FileInfo(path);
        ulong inode = Inode(path);
        if (_entries.TryGetValue(path, out var e) && e.Size == info.Length && e.Ticks == info.LastWriteTimeUtc.Ticks && e.Inode == inode)
            return e.Sha;
        string sha = FileHash.Sha256(path, null, cancel).Sha256;
        _entries[path] = (info.Length, info.LastWriteTimeUtc.Ticks, inode, sha);
        _dirty = true;
        return sha;
    }

    /// <summary>Writes the cache when it changed (temporary file and rename).</summary>
    public void Save()
    {
        if (!_dirty) return;
        Directory.CreateDirectory(Path.GetDirectoryName(_cacheFile)!);
        string temp = $"{_cacheFile}.{Environment.ProcessId}.tmp";
        File.WriteAllLines(temp, _entries.OrderBy(e => e.Key, StringComparer.Ordinal)
            .Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Value.Sha} {e.Value.Size} {e.Value.Ticks} {e.Value.Inode} {e.Key}")));
        File.Move(temp, _cacheFile, overwrite: true);
        _dirty = false;
    }

    /// <summary>The file's inode on Linux (0 elsewhere: size and time alone key the cache there).</summary>
    private static ulong Inode(string path)
    {
        // struct stat starts with st_dev (8 bytes) then st_ino (8 bytes) on Linux x64 and arm64.
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64)) return 0;
        var buffer = new byte[256];
        try
        {
            return NativeMethods.stat(path, buffer) == 0 ? BitConverter.ToUInt64(buffer, 8) : 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return 0;
        }
    }

    private static class NativeMethods
    {
        [DllImport("libc", SetLastError = true)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
#pragma warning disable SYSLIB1054 // LibraryImport needs unsafe code; one call per input file does not need it.
        public static extern int stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
#pragma warning restore SYSLIB1054
    }
}
