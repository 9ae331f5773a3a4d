using Qcow.Engine.Chain;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow linearize</c> should do.</summary>
public sealed record LinearizeRequest
{
    /// <summary>The top image of the chain.</summary>
    public required string TopImage { get; init; }
    /// <summary>The folder the layers and chain.json go to.</summary>
    public required string OutputFolder { get; init; }
    /// <summary>Cluster size, compat and compression of every layer.</summary>
    public WriteOptions Options { get; init; } = WriteOptions.Default;
    /// <summary>Only these snapshots (names or ids) become layers; null: all of them.</summary>
    public IReadOnlyList<string>? Snapshots { get; init; }
    /// <summary>Where backing files may be.</summary>
    public BackingPolicy? Policy { get; init; }
    /// <summary>
    /// When set, only layers taken from these source images (full paths) are written; the others are expected to be
    /// up to date in the output folder already (they are written anyway when missing). Used for partial rebuilds.
    /// </summary>
    public IReadOnlySet<string>? OnlyImages { get; init; }
    /// <summary>
    /// How layers are named, without ".qcow2": <c>{image}</c> is the source image's file name without extension,
    /// <c>{snapshot}</c> the snapshot's name. For an image's current state <c>{snapshot}</c> is empty and a
    /// separator (<c>_</c>, <c>-</c>, <c>.</c>) next to it is dropped. Default <c>{image}_{snapshot}</c>.
    /// </summary>
    public string? NamePattern { get; init; }
}
