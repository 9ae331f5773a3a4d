namespace Qcow.Engine.Writing;

/// <summary>Where an operation puts guest clusters, in increasing guest order: a qcow2 or a raw output.</summary>
internal interface IClusterSink : IDisposable
{
    /// <summary>The cluster size the sink is written in.</summary>
    int ClusterSize { get; }
    /// <summary>The write options.</summary>
    WriteOptions Options { get; }
    /// <summary>Clusters stored as data.</summary>
    long DataClusters { get; }
    /// <summary>Clusters stored as zero clusters.</summary>
    long ZeroClusters { get; }
    /// <summary>Stores one cluster of data (the last may be short).</summary>
    void AddData(long guestCluster, ReadOnlySpan<byte> data);
    /// <summary>Stores one cluster as a compressed stream.</summary>
    void AddCompressed(long guestCluster, ReadOnlySpan<byte> stream);
    /// <summary>Makes one cluster read as zeros.</summary>
    void AddZero(long guestCluster);
    /// <summary>Completes the output and renames it into place. Returns the SHA-256 when asked.</summary>
    string? Commit(bool computeSha256);
}
