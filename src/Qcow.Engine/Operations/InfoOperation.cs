using Qcow.Engine.Chain;
using Qcow.Engine.Format;

namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow info</c> shows about one file of a chain.</summary>
public sealed record ImageInfo
{
    /// <summary>Full path.</summary>
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
    /// <summary>The backing file resolved to a full path.</summary>
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
        for (int i = 0; i < chain.Count; i++)
        {
            var link = chain[i];
            var img = (link as QcowLink)?.Image;
            list.Add(new ImageInfo
            {
                FileName = i == 0 ? path : link.Path,
                Format = link.Format,
                VirtualSize = link.VirtualSize,
                ActualSize = link.File.AllocatedSize ?? link.FileLength,
                ClusterSize = img?.Header.ClusterSize,
                BackingFilename = link.BackingName,
                FullBackingFilename = i + 1 < chain.Count ? chain[i + 1].Path : link.BackingName is { } n ? Path.GetFullPath(Path.Combine(Path.GetDirectoryName(link.Path)!, n)) : null,
                BackingFilenameFormat = img?.Extensions.BackingFormat,
                // qemu lists no internal snapshots for an image with an external data file (it supports none there).
                Snapshots = img is null || img.NeedsDataFile ? [] : img.Snapshots,
                Header = img?.Header,
                DataFile = img?.Extensions.ExternalDataFile,
                Dirty = img is not null && (img.Header.IncompatibleFeatures & IncompatibleFeatures.Dirty) != 0,
                Corrupt = img is { IsMarkedCorrupt: true },
                Encrypted = img is { IsEncrypted: true },
            });
        }
        return new InfoResult { Images = list };
    }
}
