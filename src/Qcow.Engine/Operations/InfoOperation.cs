using Qcow.Engine.Chain;
using Qcow.Engine.Format;

namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow info</c> shows about one file of a chain.</summary>
public sealed record ImageInfo
{
    /// <summary>
    /// The file's name as qemu-img shows it: the top image's as given; each file below it named by the one above, its
    /// backing file name after the directory part of that image's name (see <see cref="FullBackingFilename"/>).
    /// </summary>
    public required string FileName { get; init; }
    /// <summary>"qcow2" or "raw".</summary>
    public required string Format { get; init; }
    /// <summary>Virtual size of the current state.</summary>
    public long VirtualSize { get; init; }
    /// <summary>File length in bytes.</summary>
    public long ActualSize { get; init; }
    /// <summary>Cluster size (qcow2).</summary>
    public int? ClusterSize { get; init; }
    /// <summary>Backing file name as stored.</summary>
    public string? BackingFilename { get; init; }
    /// <summary>
    /// The backing file as qemu-img names it: an absolute name as stored, a relative one after the directory part of
    /// <see cref="FileName"/> (relative when that is, not normalised: <c>x/sub/../a.qcow2</c>).
    /// </summary>
    public string? FullBackingFilename { get; init; }
    /// <summary>Backing format recorded in the image.</summary>
    public string? BackingFilenameFormat { get; init; }
    /// <summary>Internal snapshots in table order.</summary>
    public IReadOnlyList<Snapshot> Snapshots { get; init; } = [];
    /// <summary>The qcow2 header (null for raw).</summary>
    public QcowHeader? Header { get; init; }
    /// <summary>External data file name, if any.</summary>
    public string? DataFile { get; init; }
    /// <summary>True when the dirty bit is set.</summary>
    public bool Dirty { get; init; }
    /// <summary>True when the corrupt bit is set (qemu found the image damaged).</summary>
    public bool Corrupt { get; init; }
    /// <summary>True when the image is encrypted (shown; its guest data cannot be read).</summary>
    public bool Encrypted { get; init; }
}

/// <summary><c>qcow info</c>: header facts and snapshots of an image, optionally of its whole backing chain.</summary>
public static class InfoOperation
{
    /// <summary>
    /// Describes the image, and with <see cref="InfoRequest.BackingChain"/> every file below it too. It reads
    /// metadata only: <paramref name="progress"/> hears nothing, and <paramref name="cancel"/> is checked before it starts.
    /// </summary>
    public static InfoResult Run(InfoRequest request, Action<ProgressInfo>? progress = null, CancellationToken cancel = default)
    {
        cancel.ThrowIfCancellationRequested();
        string path = request.Image;
        bool backingChain = request.BackingChain;
        using var set = new ImageSet(request.Policy);
        // Without the chain, the backing file need not exist (as qemu-img info).
        IReadOnlyList<ChainLink> chain = backingChain ? set.Chain(path) : [set.Top(path)];
        var list = new List<ImageInfo>();
        string name = path;
        for (int i = 0; i < chain.Count; i++)
        {
            var link = chain[i];
            var img = (link as QcowLink)?.Image;
            string? fullBacking = link.BackingName is { } n ? QemuBackingName(name, n) : null;
            // The chain was resolved from the same names (ImageSet); a backing file found elsewhere is named as found.
            if (i + 1 < chain.Count && (fullBacking is null || Path.GetFullPath(fullBacking) != chain[i + 1].Path))
                fullBacking = chain[i + 1].Path;
            list.Add(new ImageInfo
            {
                FileName = name,
                Format = link.Format,
                VirtualSize = link.VirtualSize,
                ActualSize = link.File.AllocatedSize ?? link.FileLength,
                ClusterSize = img?.Header.ClusterSize,
                BackingFilename = link.BackingName,
                FullBackingFilename = fullBacking,
                BackingFilenameFormat = img?.Extensions.BackingFormat,
                // qemu lists no internal snapshots for an image with an external data file (it supports none there).
                Snapshots = img is null || img.NeedsDataFile ? [] : img.Snapshots,
                Header = img?.Header,
                DataFile = img?.Extensions.ExternalDataFile,
                Dirty = img is not null && (img.Header.IncompatibleFeatures & IncompatibleFeatures.Dirty) != 0,
                Corrupt = img is { IsMarkedCorrupt: true },
                Encrypted = img is { IsEncrypted: true },
            });
            if (fullBacking is not null) name = fullBacking;
        }
        return new InfoResult { Images = list };
    }

    /// <summary>
    /// qemu's name for the file an image names (its path_combine): an absolute name as it is; a relative one after the
    /// directory part of the image's name, as a string, so a relative image name gives a relative one.
    /// </summary>
    private static string QemuBackingName(string imageName, string backingName) =>
        Path.IsPathRooted(backingName) ? backingName : imageName[..(imageName.LastIndexOf('/') + 1)] + backingName;
}
