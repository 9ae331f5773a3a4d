using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Qcow.Engine.IO;

/// <summary>
/// The Linux calls an output file uses: O_DIRECT on and off (fcntl) and early writeback (sync_file_range). Each
/// answers false where the call is missing, so the caller falls back; <see cref="HostPlatform"/> decides whether they
/// are tried at all.
/// </summary>
internal static class OutputCalls
{
    /// <summary>Turns O_DIRECT on or off for an open file (Linux only); false when the file system does not support it.</summary>
    public static bool TrySetDirect(SafeFileHandle handle, bool on)
    {
        if (!OperatingSystem.IsLinux()) return false;
        int odirect = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x10000 : 0x4000;
        try
        {
            int fd = (int)handle.DangerousGetHandle();
            int flags = Fcntl(fd, FGetFl, 0);
            if (flags < 0) return false;
            return Fcntl(fd, FSetFl, on ? flags | odirect : flags & ~odirect) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    private const int FGetFl = 3, FSetFl = 4;

    [DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int cmd, int arg);

    /// <summary>
    /// Asks the kernel to start writing a range back (sync_file_range, which does not wait for the device). Only a
    /// hint; false when the call is unavailable here, and the final flush still makes everything durable.
    /// </summary>
    public static bool TryStartWriteback(SafeFileHandle handle, long offset, long length)
    {
        try
        {
            return SyncFileRange((int)handle.DangerousGetHandle(), offset, length, SyncFileRangeWrite) == 0;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    private const uint SyncFileRangeWrite = 2;

    [DllImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static extern int SyncFileRange(int fd, long offset, long nbytes, uint flags);
}
