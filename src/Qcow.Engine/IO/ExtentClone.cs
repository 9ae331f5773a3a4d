using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Qcow.Engine.IO;

/// <summary>
/// Makes a range of one file share its storage with a range of another (a reflink) on file systems that share extents
/// (XFS with reflink=1, btrfs): FICLONERANGE, then copy_file_range where that shares extents too. The answer is only
/// "the target range now holds the source's bytes" or "cannot clone here"; on the second the caller writes the bytes
/// itself, so a real failure of the device (ENOSPC, EIO) is reported by that write, not here. Linux only
/// (<see cref="HostPlatform"/>); elsewhere, or with the switch off, nothing is cloned.
/// </summary>
internal static class ExtentClone
{
    // _IOW(0x94, 13, struct file_clone_range): the struct is 32 bytes.
    private const uint FicloneRange = 0x4020940D;

    // statfs f_type of the file systems whose copy_file_range shares extents rather than copying in the kernel.
    private const long XfsMagic = 0x58465342, BtrfsMagic = 0x9123683E;

    private const int Eperm = 1, Enotty = 25, Enosys = 38;

    [StructLayout(LayoutKind.Sequential)]
    private struct FileCloneRange
    {
        public long SrcFd;
        public ulong SrcOffset;
        public ulong SrcLength;
        public ulong DestOffset;
    }

    [DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static extern unsafe int IoctlClone(int fd, nuint request, FileCloneRange* range);

    [DllImport("libc", EntryPoint = "copy_file_range", SetLastError = true)]
    private static extern unsafe nint CopyFileRange(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [DllImport("libc", EntryPoint = "fstatfs", SetLastError = true)]
    private static extern unsafe int FStatFs(int fd, byte* buf);

    /// <summary>
    /// Clones <paramref name="length"/> bytes at <paramref name="sourceOffset"/> of <paramref name="source"/> to
    /// <paramref name="targetOffset"/> of <paramref name="target"/>. Offsets and length must be multiples of
    /// <paramref name="alignment"/> (the cluster size; the file system may demand its block size, and refuses then).
    /// True when the target range holds the source's bytes; false, with nothing to report, when it cannot be done
    /// here (the target range may then hold part of them, which the caller's own write replaces).
    /// </summary>
    public static unsafe bool TryClone(SafeFileHandle source, long sourceOffset, SafeFileHandle target, long targetOffset, long length, int alignment)
    {
        if (!HostPlatform.LinuxCalls || length <= 0 || alignment <= 0) return false;
        if (sourceOffset % alignment != 0 || targetOffset % alignment != 0 || length % alignment != 0) return false;
        bool srcAdded = false, dstAdded = false;
        try
        {
            source.DangerousAddRef(ref srcAdded);
            target.DangerousAddRef(ref dstAdded);
            int src = (int)source.DangerousGetHandle(), dst = (int)target.DangerousGetHandle();
            var range = new FileCloneRange
            {
                SrcFd = src, SrcOffset = (ulong)sourceOffset, SrcLength = (ulong)length, DestOffset = (ulong)targetOffset,
            };
            if (IoctlClone(dst, FicloneRange, &range) == 0) return true;
            // Refused: EOPNOTSUPP (no reflinks here), EXDEV, EINVAL (not on whole blocks), ETXTBSY ... are answers.
            // Only a call that did not get through (no such ioctl, or a sandbox filtering ioctls) is tried again with
            // copy_file_range, and only where that shares extents (XFS, btrfs, whole blocks): anywhere else it copies
            // through the kernel, which is not what a clone promises.
            int errno = Marshal.GetLastPInvokeError();
            if (errno is not (Enotty or Eperm or Enosys)) return false;
            long block = SharingBlockSize(src);
            if (block <= 0 || block != SharingBlockSize(dst)) return false;
            if (sourceOffset % block != 0 || targetOffset % block != 0 || length % block != 0) return false;
            long inPos = sourceOffset, outPos = targetOffset, left = length;
            while (left > 0)
            {
                nint n = CopyFileRange(src, &inPos, dst, &outPos, (nuint)left, 0);
                if (n <= 0) return false;
                left -= n;
            }
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
        finally
        {
            if (dstAdded) target.DangerousRelease();
            if (srcAdded) source.DangerousRelease();
        }
    }

    // The block size of a file system whose copy_file_range shares extents, else 0. f_type and f_bsize are the
    // first two fields of struct statfs (longs) on both x86-64 and arm64 Linux.
    private static unsafe long SharingBlockSize(int fd)
    {
        if (!(RuntimeInformation.ProcessArchitecture is Architecture.X64 or Architecture.Arm64)) return 0;
        byte* buf = stackalloc byte[256];
        if (FStatFs(fd, buf) != 0) return 0;
        long type = *(long*)buf;
        return type is XfsMagic or BtrfsMagic ? *(long*)(buf + 8) : 0;
    }
}
