using Qcow.Engine.Format;
using Qcow.Engine.IO;
using Qcow.Engine.Views;

namespace Qcow.Engine.Chain;

/// <summary>One file of a backing chain: a <see cref="QcowLink"/> or a <see cref="RawLink"/>, nothing else.</summary>
public abstract class ChainLink : IDisposable
{
    private protected ChainLink(string path) => Path = path;

    /// <summary>The resolved full path.</summary>
    public string Path { get; }
    /// <summary>"qcow2" or "raw".</summary>
    public abstract string Format { get; }
    /// <summary>The opened file itself.</summary>
    internal abstract ImageFile File { get; }
    /// <summary>The backing file name exactly as the image stores it (null at the bottom, and for raw).</summary>
    public virtual string? BackingName => null;
    /// <summary>The file's length in bytes.</summary>
    public long FileLength => File.Length;
    /// <summary>The virtual size of the current state.</summary>
    public abstract long VirtualSize { get; }
    /// <summary>Every file the link reads: itself and, for a qcow2 image, its external data file.</summary>
    internal virtual IReadOnlyList<ImageFile> Files => [File];

    /// <summary>
    /// The view of this link at <paramref name="snapshot"/> (null: current state) over <paramref name="backing"/>;
    /// <paramref name="depth"/> is its place in the chain (0 = top).
    /// </summary>
    internal abstract DiskView View(Snapshot? snapshot, DiskView? backing, int depth);

    /// <inheritdoc />
    public abstract void Dispose();
}

/// <summary>A qcow2 image in a chain.</summary>
public sealed class QcowLink : ChainLink
{
    internal QcowLink(string path, QcowImage image) : base(path) => Image = image;

    /// <summary>The opened image.</summary>
    internal QcowImage Image { get; }
    /// <summary>The image's header.</summary>
    public QcowHeader Header => Image.Header;
    /// <summary>The image's internal snapshots, in table order.</summary>
    public IReadOnlyList<Snapshot> Snapshots => Image.Snapshots;
    /// <inheritdoc />
    public override string Format => "qcow2";
    /// <inheritdoc />
    internal override ImageFile File => Image.File;
    /// <inheritdoc />
    public override string? BackingName => Image.BackingFileName;
    /// <inheritdoc />
    public override long VirtualSize => (long)Image.Header.Size;
    /// <inheritdoc />
    internal override IReadOnlyList<ImageFile> Files => ReferenceEquals(Image.DataFile, Image.File) ? [Image.File] : [Image.File, Image.DataFile];

    internal override DiskView View(Snapshot? snapshot, DiskView? backing, int depth) => new QcowView(Image, snapshot, backing, depth);

    /// <inheritdoc />
    public override void Dispose() => Image.Dispose();
}

/// <summary>A raw file in a chain: guest offset equals file offset; no snapshots, no backing file.</summary>
public sealed class RawLink : ChainLink
{
    private readonly ImageFile _file;

    internal RawLink(string path, ImageFile file) : base(path) => _file = file;

    /// <inheritdoc />
    public override string Format => "raw";
    /// <inheritdoc />
    internal override ImageFile File => _file;
    /// <inheritdoc />
    public override long VirtualSize => RawView.SizeOf(_file.Length);

    internal override DiskView View(Snapshot? snapshot, DiskView? backing, int depth) =>
        snapshot is null ? new RawView(_file, depth) : throw new QcowException(Path, "a raw image has no snapshots");

    /// <inheritdoc />
    public override void Dispose() => _file.Dispose();
}
