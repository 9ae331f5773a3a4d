namespace Qcow.Engine.Operations;

/// <summary>What writing one output cost and produced.</summary>
public sealed record LayerStats
{
    /// <summary>Guest bytes read from data clusters of the sources (metadata excluded).</summary>
    public long BytesRead { get; init; }
    /// <summary>Guest clusters whose content was compared or copied because metadata could not prove them equal.</summary>
    public long ClustersCompared { get; init; }
    /// <summary>Clusters stored as data.</summary>
    public long DataClusters { get; init; }
    /// <summary>Clusters stored as zero clusters.</summary>
    public long ZeroClusters { get; init; }
    /// <summary>Virtual size of the image written.</summary>
    public long VirtualSize { get; init; }
    /// <summary>Size of the output file in bytes.</summary>
    public long FileSize { get; init; }
    /// <summary>SHA-256 of the output file (lower-case hex), when computed.</summary>
    public string? Sha256 { get; init; }
}

/// <summary>Progress of a long operation: bytes of guest disk walked so far out of a total.</summary>
/// <param name="Done">Guest bytes done.</param>
/// <param name="Total">Guest bytes in all.</param>
/// <param name="Stage">What is being worked on (e.g. the layer's file name).</param>
public readonly record struct ProgressInfo(long Done, long Total, string Stage);
