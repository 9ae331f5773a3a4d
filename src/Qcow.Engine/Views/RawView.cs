using Qcow.Engine.IO;

namespace Qcow.Engine.Views;

/// <summary>A raw file used as a backing file: guest offset equals host offset; its size is the file's length.</summary>
public sealed class RawView(ImageFile file, int depth) : DiskView
{
    /// <summary>The raw file.</summary>
    public ImageFile File { get; } = file;
    /// <inheritdoc />
    public override long Size => File.Length;
    /// <inheritdoc />
    public override int ChainDepth => depth;
    /// <inheritdoc />
    public override string Name => System.IO.Path.GetFileName(File.Path);
    /// <inheritdoc />
    protected override Extent GetExtentWithin(long offset, long maxLength) =>
        new(maxLength, ExtentKind.Data, depth, File, (ulong)offset, IsRaw: true);
}
