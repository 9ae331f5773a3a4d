using Microsoft.Win32.SafeHandles;

namespace Qcow.Engine.IO;

/// <summary>
/// A source file opened read-only for positional reads. Safe to read from several threads at once.
/// Counts the bytes read so operations can report how much data they had to touch.
/// </summary>
internal sealed class ImageFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private long _bytesRead;

    private ImageFile(string path, SafeFileHandle handle, long length)
    {
        Path = path;
        _handle = handle;
        Length = length;
    }

    /// <summary>The full path of the file.</summary>
    public string Path { get; }

    /// <summary>The length of the file when it was opened.</summary>
    public long Length { get; }

    /// <summary>The open handle, for cloning its ranges into an output (<see cref="ExtentClone"/>).</summary>
    internal SafeFileHandle Handle => _handle;

    /// <summary>Bytes read through this handle so far.</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>Opens <paramref name="path"/> read-only, sharing reads with others.</summary>
    public static ImageFile Open(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        try
        {
            if (Directory.Exists(full))
                throw new QcowException(full, "is a folder, not an image file");
            var handle = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            return new ImageFile(full, handle, RandomAccess.GetLength(handle));
        }
        catch (FileNotFoundException)
        {
            throw new QcowException(full, "file not found");
        }
        catch (DirectoryNotFoundException)
        {
            throw new QcowException(full, "file not found (its folder does not exist)");
        }
        catch (UnauthorizedAccessException)
        {
            throw new QcowException(full, "permission denied: cannot open the file for reading");
        }
        catch (IOException e)
        {
            throw new QcowException(full, $"cannot open: {e.Message}");
        }
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>, or fails naming <paramref name="what"/>.</summary>
    public void ReadExactly(long offset, Span<byte> buffer, string what)
    {
        if (offset < 0 || offset > Length || buffer.Length > Length - offset)
            throw new QcowFormatException(Path, what, $"points past the end of the file (offset {offset}, {buffer.Length} bytes, file is {Length} bytes)");
        int done = 0;
        while (done < buffer.Length)
        {
            int n;
            try
            {
                n = RandomAccess.Read(_handle, buffer[done..], offset + done);
            }
            catch (IOException e)
            {
                throw new QcowException(Path, $"read error at offset {offset + done}: {e.Message}");
            }
            if (n <= 0)
                throw new QcowFormatException(Path, what, $"file ended early at offset {offset + done} (truncated?)");
            done += n;
        }
        Interlocked.Add(ref _bytesRead, buffer.Length);
    }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; returns the count (short at the end of the file).</summary>
    public int ReadAtMost(long offset, Span<byte> buffer)
    {
        if (offset >= Length) return 0;
        int want = (int)Math.Min(buffer.Length, Length - offset);
        ReadExactly(offset, buffer[..want], "data");
        return want;
    }

    /// <summary>
    /// Splits host bytes [<paramref name="offset"/>, +<paramref name="length"/>) into runs that are stored or are holes
    /// in a sparse file (SEEK_DATA/SEEK_HOLE), as qemu-img map reports them. Without that support: one stored run.
    /// </summary>
    public IEnumerable<(long Offset, long Length, bool Hole)> HostRuns(long offset, long length) =>
        SparseFile.Runs(_handle, Length, offset, length);

    /// <summary>
    /// The path the kernel gives for the opened handle (Linux: /proc/self/fd), with every symlink resolved as it was
    /// at open time; null where the kernel cannot be asked (other systems, no /proc). Checking this after opening
    /// closes the gap between checking a path and opening it, in which a symlink could be swapped in.
    /// </summary>
    public string? OpenedRealPath
    {
        get
        {
            if (!HostPlatform.LinuxCalls) return null;
            bool added = false;
            try
            {
                _handle.DangerousAddRef(ref added);
                string link = $"/proc/self/fd/{(int)_handle.DangerousGetHandle()}";
                return new FileInfo(link).LinkTarget;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
            finally
            {
                if (added) _handle.DangerousRelease();
            }
        }
    }

    /// <summary>Bytes the file occupies on disk (sparse files less than their length), or null when unknown.</summary>
    public long? AllocatedSize => SparseFile.AllocatedSize(_handle);

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();
}
