using Qcow.Engine.IO;

namespace Qcow.Engine.Views;

/// <summary>A raw file used as a backing file: guest offset equals host offset; its size is the file's length.</summary>
internal sealed class RawView(ImageFile file, int depth) : DiskView
{
    /// <summary>The raw file.</summary>
    public ImageFile File { get; } = file;
    /// <inheritdoc />
    public override long Size => SizeOf(File.Length);

    /// <summary>
    /// The virtual size of a raw file of <paramref name="fileLength"/> bytes: qemu counts whole 512-byte sectors,
    /// rounded up (qemu-img info and convert show a 1000-byte raw file as 1024 bytes); the tail reads as zeros.
    /// </summary>
    public static long SizeOf(long fileLength) => (fileLength + 511) & ~511L;
    /// <inheritdoc />
    internal override int ChainDepth => depth;
    /// <inheritdoc />
    public override string Name => System.IO.Path.GetFileName(File.Path);
    /// <inheritdoc />
    private protected override Extent GetExtentWithin(long offset, long maxLength) =>
        new(maxLength, ExtentKind.Data, depth, File, (ulong)offset, IsRaw: true);
}
