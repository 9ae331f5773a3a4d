namespace Qcow.Engine.Writing;

/// <summary>Writes a raw image: guest offset equals file offset; clusters that read as zero stay holes.</summary>
public sealed class RawWriter : IClusterSink
{
    private readonly OutputFile _output;
    private readonly long _size;

    /// <summary>Starts a raw image of <paramref name="virtualSize"/> bytes.</summary>
    public RawWriter(OutputFile output, long virtualSize, WriteOptions options)
    {
        _output = output;
        _size = virtualSize;
        Options = options with { Compress = false };
        ClusterSize = options.ClusterSize;
    }

    /// <inheritdoc />
    public int ClusterSize { get; }
    /// <inheritdoc />
    public WriteOptions Options { get; }
    /// <inheritdoc />
    public long DataClusters { get; private set; }
    /// <inheritdoc />
    public long ZeroClusters { get; private set; }

    /// <inheritdoc />
    public void AddData(long guestCluster, ReadOnlySpan<byte> data)
    {
        _output.Stream.Position = guestCluster * ClusterSize;
        _output.Stream.Write(data[..(int)Math.Min(data.Length, _size - guestCluster * ClusterSize)]);
        DataClusters++;
    }

    /// <inheritdoc />
    public void AddCompressed(long guestCluster, ReadOnlySpan<byte> stream) =>
        throw new InvalidOperationException("raw output cannot hold compressed clusters");

    /// <inheritdoc />
    public void AddZero(long guestCluster)
    {
        // A new raw file reads as zeros already; there is no backing file to hide.
        ZeroClusters++;
    }

    /// <inheritdoc />
    public string? Commit(bool computeSha256)
    {
        _output.Stream.SetLength(_size);
        return _output.Commit(computeSha256);
    }

    /// <inheritdoc />
    public void Dispose() => _output.Dispose();
}
