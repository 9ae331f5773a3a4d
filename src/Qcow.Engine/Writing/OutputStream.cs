using Microsoft.Win32.SafeHandles;

namespace Qcow.Engine.Writing;

/// <summary>
/// The stream over an output's temporary file. A write that fails (disk full, quota, I/O error) surfaces as a
/// <see cref="QcowException"/> that names the output, not as an <see cref="IOException"/> about a temporary name the
/// user never chose; the caller's <see cref="OutputFile"/> then removes the temporary file.
/// </summary>
internal sealed class OutputStream : Stream
{
    private readonly FileStream _file;
    private readonly string _target;

    internal OutputStream(FileStream file, string target)
    {
        _file = file;
        _target = target;
    }

    /// <summary>The handle of the temporary file.</summary>
    public SafeFileHandle SafeFileHandle => _file.SafeFileHandle;

    /// <inheritdoc />
    public override bool CanRead => _file.CanRead;
    /// <inheritdoc />
    public override bool CanSeek => _file.CanSeek;
    /// <inheritdoc />
    public override bool CanWrite => _file.CanWrite;
    /// <inheritdoc />
    public override long Length => _file.Length;

    /// <inheritdoc />
    public override long Position
    {
        get => _file.Position;
        set => Guard(() => _file.Position = value);
    }

    /// <inheritdoc />
    public override void Flush() => Guard(_file.Flush);

    /// <summary>Flushes the buffer, and with <paramref name="flushToDisk"/> the page cache too (fsync).</summary>
    public void Flush(bool flushToDisk) => Guard(() => _file.Flush(flushToDisk));

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => _file.Read(buffer, offset, count);

    /// <inheritdoc />
    public override int Read(Span<byte> buffer) => _file.Read(buffer);

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin)
    {
        long result = 0;
        Guard(() => result = _file.Seek(offset, origin));
        return result;
    }

    /// <inheritdoc />
    public override void SetLength(long value) => Guard(() => _file.SetLength(value));

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        try
        {
            _file.Write(buffer);
        }
        catch (IOException e)
        {
            throw Fail(e);
        }
    }

    /// <inheritdoc />
    public override void WriteByte(byte value) => Write([value]);

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing) _file.Dispose();
        base.Dispose(disposing);
    }

    private void Guard(Action action)
    {
        try
        {
            action();
        }
        catch (IOException e)
        {
            throw Fail(e);
        }
    }

    private QcowException Fail(IOException e) => new(_target, $"cannot write output: {e.Message}", e);
}
