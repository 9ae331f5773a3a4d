using Qcow.Engine.Format;
using Qcow.Engine.IO;

namespace Qcow.Engine.Chain;

/// <summary>One file of a backing chain.</summary>
public sealed class ChainLink
{
    /// <summary>The resolved full path.</summary>
    public required string Path { get; init; }
    /// <summary>"qcow2" or "raw".</summary>
    public required string Format { get; init; }
    /// <summary>The opened qcow2 image (null for raw).</summary>
    public QcowImage? Image { get; init; }
    /// <summary>The opened raw file (null for qcow2).</summary>
    public ImageFile? RawFile { get; init; }
    /// <summary>The backing file name exactly as the image stores it (null at the bottom).</summary>
    public string? BackingName => Image?.BackingFileName;
    /// <summary>The file's length in bytes.</summary>
    public long FileLength => Image?.File.Length ?? RawFile!.Length;
    /// <summary>The virtual size of the current state.</summary>
    public long VirtualSize => Image is not null ? (long)Image.Header.Size : Views.RawView.SizeOf(RawFile!.Length);
}
