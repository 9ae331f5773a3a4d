using System.Security.Cryptography;

namespace Qcow.Engine.Writing;

/// <summary>
/// Writes a raw image: guest offset equals file offset. In a file, clusters that read as zero stay holes; to a stream
/// (which cannot seek) they are written as zeros, so the bytes are the same.
/// </summary>
internal sealed class RawWriter : IClusterSink
{
    private const int ZeroBlock = 1 << 20;
    private static readonly byte[] Zeros = new byte[ZeroBlock];

    private readonly OutputFile? _output;
    private readonly Stream? _sink;
    private readonly string _name;
    private readonly IncrementalHash? _hash;
    private readonly long _size;
    private long _written;

    /// <summary>Starts a raw image of <paramref name="virtualSize"/> bytes.</summary>
    public RawWriter(OutputFile output, long virtualSize, WriteOptions options)
        : this(output, null, output.TargetPath, virtualSize, options, sha256: false)
    {
    }

    /// <summary>
    /// Starts a raw image of <paramref name="virtualSize"/> bytes written front to back to <paramref name="sink"/>,
    /// which need not seek; <paramref name="name"/> names it in errors. With <paramref name="sha256"/>,
    /// <see cref="Commit"/> returns the hash of the bytes written. The sink is flushed, not closed.
    /// </summary>
    public RawWriter(Stream sink, string name, long virtualSize, WriteOptions options, bool sha256 = false)
        : this(null, sink, name, virtualSize, options, sha256)
    {
    }

    private RawWriter(OutputFile? output, Stream? sink, string name, long virtualSize, WriteOptions options, bool sha256)
    {
        _output = output;
        _sink = sink;
        _name = name;
        _size = virtualSize;
        _hash = sha256 ? IncrementalHash.CreateHash(HashAlgorithmName.SHA256) : null;
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
        long at = guestCluster * ClusterSize;
        data = data[..(int)Math.Min(data.Length, _size - at)];
        if (_sink is null)
        {
            _output!.Stream.Position = at;
            _output.Stream.Write(data);
        }
        else
        {
            if (at < _written) throw new InvalidOperationException($"clusters must be added in increasing order ({guestCluster})");
            WriteZerosTo(at);
            Send(data);
        }
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
        if (_sink is null)
        {
            _output!.Stream.SetLength(_size);
            return _output.Commit(computeSha256);
        }
        WriteZerosTo(_size);
        try
        {
            _sink.Flush();
        }
        catch (IOException e)
        {
            throw Failure(e);
        }
        if (computeSha256 && _hash is null) throw new InvalidOperationException("a stream output is hashed only when made with sha256");
        return _hash is null ? null : Convert.ToHexStringLower(_hash.GetHashAndReset());
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _output?.Dispose();
        _hash?.Dispose();
    }

    private void WriteZerosTo(long end)
    {
        while (_written < end) Send(Zeros.AsSpan(0, (int)Math.Min(ZeroBlock, end - _written)));
    }

    private void Send(ReadOnlySpan<byte> bytes)
    {
        try
        {
            _sink!.Write(bytes);
        }
        catch (IOException e)
        {
            throw Failure(e);
        }
        _hash?.AppendData(bytes);
        _written += bytes.Length;
    }

    private QcowException Failure(IOException e) => new(_name, $"cannot write output: {e.Message}", e);
}
