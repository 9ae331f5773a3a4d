using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Qcow.Engine.IO;

/// <summary>
/// Holes in sparse host files, via lseek(SEEK_DATA/SEEK_HOLE), and the space a file occupies (fstat st_blocks): Linux
/// only (<see cref="HostPlatform"/>). Elsewhere a file is one stored run and its occupied size is unknown.
/// </summary>
internal static class SparseFile
{
    private const int SeekData = 3, SeekHole = 4;

    [DllImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static extern long LSeek(int fd, long offset, int whence);

    public static IEnumerable<(long Offset, long Length, bool Hole)> Runs(SafeFileHandle handle, long fileLength, long offset, long length)
    {
        long end = offset + length;
        if (!HostPlatform.LinuxCalls)
        {
            yield return (offset, length, false);
            yield break;
        }
        long pos = offset;
        while (pos < end)
        {
            if (pos >= fileLength) { yield return (pos, end - pos, true); yield break; }
            long data = Seek(handle, pos, SeekData);
            if (data < 0) { yield return (pos, end - pos, true); yield break; }
            if (data > pos)
            {
                long holeEnd = Math.Min(data, end);
                yield return (pos, holeEnd - pos, true);
                pos = holeEnd;
                continue;
            }
            long hole = Seek(handle, pos, SeekHole);
            long dataEnd = hole < 0 ? end : Math.Min(Math.Max(hole, pos + 1), end);
            yield return (pos, dataEnd - pos, false);
            pos = dataEnd;
        }
    }

    [DllImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static extern unsafe int FStat(int fd, byte* buf);

    /// <summary>Bytes the file occupies on disk (st_blocks * 512), or null where that cannot be asked.</summary>
    public static unsafe long? AllocatedSize(SafeFileHandle handle)
    {
        // st_blocks sits at byte 64 of struct stat on both x86-64 and arm64 Linux.
        if (!HostPlatform.LinuxCalls || !(RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64)) return null;
        bool added = false;
        byte* buf = stackalloc byte[256];
        try
        {
            handle.DangerousAddRef(ref added);
            if (FStat((int)handle.DangerousGetHandle(), buf) != 0) return null;
            return *(long*)(buf + 64) * 512;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    private static long Seek(SafeFileHandle handle, long offset, int whence)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return LSeek((int)handle.DangerousGetHandle(), offset, whence);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // No lseek to ask: everything is data (SEEK_DATA finds data here, SEEK_HOLE finds no hole).
            return whence == SeekData ? offset : -1;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }
}
