using Microsoft.Win32.SafeHandles;
using Qcow.Engine.Format;
using Qcow.Engine.IO;

namespace Qcow.Engine.Writing;

/// <summary>
/// Writes a new qcow2 image in one pass with a fixed layout, so the same clusters and options always give the same
/// bytes: cluster 0 holds the header, extensions and backing file name; then data clusters in guest order, each L2
/// table right after the data it maps; then the L1 table, the refcount table and the refcount blocks. No timestamps.
/// Guest clusters must be added in increasing order.
/// </summary>
/// <remarks>
/// The header points at the L1 and refcount tables, which follow the data, so without a <see cref="LayoutPlan"/> it
/// is written last, over cluster 0. With a plan (where the data will end), the same header is known up front and the
/// whole file is written front to back, each byte once: it can be hashed as it is written, or go to a stream that
/// cannot seek (a pipe; later a registry upload).
/// </remarks>
internal sealed class QcowWriter : IClusterSink
{
    private readonly OutputFile? _output;
    private readonly string _name;
    private readonly SequentialOutput _stream;
    private readonly LayoutPlan? _plan;
    private readonly long _plannedDataEnd;
    private readonly WriteOptions _options;
    private readonly int _clusterSize;
    private readonly int _clusterBits;
    private readonly int _l2Entries;
    private readonly long _virtualSize;
    private readonly HeaderCluster _header;
    private readonly ulong[] _l1;
    private readonly ulong[] _l2;
    private readonly Dictionary<long, long> _extraRefs = new();
    private readonly byte[] _zeroCluster;
    private long _currentL2 = -1;
    private long _pos;
    private long _lastCluster = -1;
    private long _lastCompressedHostCluster = -1;

    /// <summary>
    /// Starts an image of <paramref name="virtualSize"/> bytes written to <paramref name="output"/>. With a
    /// <paramref name="plan"/>, the clusters added must match it exactly and the output is hashed as it is written;
    /// without one, the output is hashed afterwards when <see cref="Commit"/> is asked to.
    /// </summary>
    public QcowWriter(OutputFile output, long virtualSize, WriteOptions options, string? backingName = null, string? backingFormat = null,
        LayoutPlan? plan = null)
        : this(output, virtualSize, options, backingName, backingFormat, plan, null)
    {
    }

    /// <summary>As the public constructor, with buffers from <paramref name="pool"/> (a pipeline's).</summary>
    internal QcowWriter(OutputFile output, long virtualSize, WriteOptions options, string? backingName, string? backingFormat,
        LayoutPlan? plan, ChunkPool? pool)
        : this(output, output.TargetPath,
            new SequentialOutput(output.Output.SafeFileHandle, output.TargetPath, sha256: plan is not null,
                // Compressed output is small and often hashed afterwards: leave it in the page cache.
                directIo: options.DirectIo && !options.Compress, pool),
            virtualSize, options, backingName, backingFormat, plan)
    {
    }

    /// <summary>
    /// Starts an image of <paramref name="virtualSize"/> bytes written front to back to <paramref name="sink"/>, which
    /// need not seek (standard output, a pipe, an upload); <paramref name="name"/> names it in errors. The
    /// <paramref name="plan"/> is required: the header goes first. With <paramref name="sha256"/> the bytes are hashed
    /// as they are written and <see cref="Commit"/> returns the hash. The sink is flushed, not closed.
    /// </summary>
    public QcowWriter(Stream sink, string name, long virtualSize, WriteOptions options, LayoutPlan plan, string? backingName = null,
        string? backingFormat = null, bool sha256 = false)
        : this(sink, name, virtualSize, options, plan, backingName, backingFormat, sha256, null)
    {
    }

    /// <summary>As the public stream constructor, with buffers from <paramref name="pool"/> (a pipeline's).</summary>
    internal QcowWriter(Stream sink, string name, long virtualSize, WriteOptions options, LayoutPlan plan, string? backingName,
        string? backingFormat, bool sha256, ChunkPool? pool)
        : this(null, name, new SequentialOutput(sink, name, sha256, pool), virtualSize, options, backingName, backingFormat,
            plan ?? throw new ArgumentNullException(nameof(plan)))
    {
    }

    private QcowWriter(OutputFile? output, string name, SequentialOutput stream, long virtualSize, WriteOptions options,
        string? backingName, string? backingFormat, LayoutPlan? plan)
    {
        // Until the header is in, a refusal (too large, a backing name too long) must stop the output's threads.
        byte[] header;
        try
        {
            options.Validate();
            _output = output;
            _name = name;
            _plan = plan;
            _stream = stream;
            _options = options;
            _clusterSize = options.ClusterSize;
            _clusterBits = options.ClusterBits;
            _l2Entries = _clusterSize / 8;
            _virtualSize = virtualSize;
            _header = new HeaderCluster(name, options.Version, _clusterBits, virtualSize, options.CompressionType, RefcountOrder, backingName, backingFormat);
            long l2Span = (long)_l2Entries * _clusterSize;
            long l1Size = (virtualSize + l2Span - 1) / l2Span;
            if (l1Size * 8 > QcowLimits.MaxL1Bytes)
                throw new QcowException(_name, $"virtual size {virtualSize} needs an L1 table larger than 32 MiB with {_clusterSize}-byte clusters; use a larger cluster_size");
            _l1 = new ulong[l1Size];
            _l2 = new ulong[_l2Entries];
            _zeroCluster = new byte[_clusterSize];
            // Check now that the header fits, so a bad backing name fails before any data is written.
            header = _header.Build(0, 0, 0, 0);
            if (plan is not null)
            {
                _plannedDataEnd = plan.DataEnd;
                var t = TailLayout(_plannedDataEnd);
                header = _header.Build((ulong)t.L1Offset, (uint)_l1.Length, (ulong)t.TableOffset, (uint)t.TableClusters);
            }
        }
        catch
        {
            stream.Dispose();
            throw;
        }
        _stream.Write(header);
        _pos = _clusterSize;
    }

    /// <summary>Where the tables after the data go, given where the data (and L2 tables) end.</summary>
    private (long L1Offset, int L1Clusters, long TableOffset, long TableClusters, long Blocks) TailLayout(long dataEnd)
    {
        int l1Clusters = (int)Math.Max(1, (_l1.Length * 8L + _clusterSize - 1) / _clusterSize);
        long tableOffset = dataEnd + (long)l1Clusters * _clusterSize;
        // The refcount structures cover themselves: grow them until they do.
        long perBlock = _clusterSize * 8L / (1 << RefcountOrder);
        long before = tableOffset >> _clusterBits;
        long tableClusters = 1, blocks = 0;
        while (true)
        {
            long total = before + tableClusters + blocks;
            long needBlocks = (total + perBlock - 1) / perBlock;
            long needTable = Math.Max(1, (needBlocks * 8 + _clusterSize - 1) / _clusterSize);
            if (needBlocks == blocks && needTable == tableClusters) break;
            blocks = needBlocks;
            tableClusters = needTable;
        }
        return (dataEnd, l1Clusters, tableOffset, tableClusters, blocks);
    }

    private const int RefcountOrder = 4;


    /// <inheritdoc />
    public int ClusterSize => _clusterSize;
    /// <summary>The options in force.</summary>
    public WriteOptions Options => _options;
    /// <summary>Guest bytes stored as data (compressed clusters count their stream length).</summary>
    public long DataBytesWritten { get; private set; }
    /// <summary>Bytes of the image so far: its size once <see cref="Commit"/> has written the tables.</summary>
    public long Length => _pos;
    /// <summary>Clusters stored as data or compressed.</summary>
    public long DataClusters { get; private set; }
    /// <summary>Clusters stored as zero clusters (zero flag, or written zeros in v2).</summary>
    public long ZeroClusters { get; private set; }

    /// <summary>Stores guest cluster <paramref name="guestCluster"/> uncompressed. A short last cluster is padded with zeros.</summary>
    public void AddData(long guestCluster, ReadOnlySpan<byte> data)
    {
        var target = BeginData(guestCluster, 1, out _);
        data.CopyTo(target);
        EndData(1, data.Length);
    }

    /// <summary>
    /// Starts storing up to <paramref name="maxCount"/> adjacent guest clusters from <paramref name="guestCluster"/>
    /// uncompressed and returns their bytes in the output, to be filled in place; <paramref name="count"/> (at least
    /// one) is how many fit before the next L2 table or the end of the output buffer. Then call
    /// <see cref="EndData"/> with how many bytes were filled (the rest becomes zeros).
    /// </summary>
    internal Span<byte> BeginData(long guestCluster, long maxCount, out int count)
    {
        Advance(guestCluster);
        AlignToCluster();
        var span = _stream.GetSpanUpTo((int)Math.Min(maxCount * _clusterSize, SequentialOutput.ChunkSize));
        long inTable = _l2Entries - guestCluster % _l2Entries;
        count = (int)Math.Min(Math.Min(maxCount, inTable), span.Length / _clusterSize);
        for (int i = 0; i < count; i++)
            _l2[(guestCluster + i) % _l2Entries] = (ulong)(_pos + (long)i * _clusterSize) | L2Entry.CopiedFlag;
        if (count > 1)
        {
            long last = guestCluster + count - 1;
            if ((last << _clusterBits) >= _virtualSize)
                throw new InvalidOperationException($"cluster {last} lies past the virtual size {_virtualSize}");
            _lastCluster = last;
        }
        return span[..(count * _clusterSize)];
    }

    /// <summary>True while the output would take cloned clusters unfilled (see <see cref="SequentialOutput.MayLeaveUnfilled"/>).</summary>
    public bool MayLeaveUnfilled => _stream.MayLeaveUnfilled;

    /// <summary>
    /// Says that <paramref name="length"/> bytes at <paramref name="offsetInSpan"/> of the span <see cref="BeginData"/>
    /// gave are whole clusters of <paramref name="source"/> at <paramref name="sourceOffset"/> (cluster-aligned): the
    /// output may clone them from there (<see cref="SequentialOutput.CloneFrom"/>). They must still be filled, unless
    /// <paramref name="mayLeaveUnfilled"/> and this returns true (the output reads them itself if it must write them).
    /// </summary>
    internal bool CloneData(int offsetInSpan, SafeFileHandle source, long sourceOffset, int length,
        bool mayLeaveUnfilled = false) =>
        _stream.CloneFrom(offsetInSpan, source, sourceOffset, length, _clusterSize, mayLeaveUnfilled);

    /// <summary>Completes the <paramref name="count"/> clusters started by <see cref="BeginData"/>.</summary>
    internal void EndData(int count, int filled)
    {
        int bytes = count * _clusterSize;
        if (filled < bytes) _stream.GetSpanUpTo(bytes)[filled..bytes].Clear();
        _stream.Advance(bytes);
        _pos += bytes;
        DataBytesWritten += bytes;
        DataClusters += count;
    }

    /// <summary>Stores guest cluster <paramref name="guestCluster"/> as an already compressed stream.</summary>
    public void AddCompressed(long guestCluster, ReadOnlySpan<byte> stream)
    {
        Advance(guestCluster);
        long host = _pos;
        long firstHostCluster = host >> _clusterBits;
        long lastHostCluster = (host + stream.Length - 1) >> _clusterBits;
        // A host cluster shared by two streams is referenced twice.
        if (firstHostCluster == _lastCompressedHostCluster)
            _extraRefs[firstHostCluster] = _extraRefs.GetValueOrDefault(firstHostCluster) + 1;
        _lastCompressedHostCluster = lastHostCluster;
        _stream.Write(stream);
        _pos += stream.Length;
        _l2[guestCluster % _l2Entries] = CompressedDescriptor.Encode((ulong)host, stream.Length, _clusterBits);
        DataBytesWritten += stream.Length;
        DataClusters++;
    }

    /// <summary>Makes guest cluster <paramref name="guestCluster"/> read as zeros whatever lies below it.</summary>
    public void AddZero(long guestCluster)
    {
        if (_options.Version < 3)
        {
            // Version 2 has no zero flag: zeros must be stored to hide the backing file.
            AddData(guestCluster, _zeroCluster);
            DataClusters--;
            DataBytesWritten -= _clusterSize;
            ZeroClusters++;
            return;
        }
        Advance(guestCluster);
        _l2[guestCluster % _l2Entries] = L2Entry.ZeroFlag;
        ZeroClusters++;
    }

    /// <summary>Writes the tables and header, flushes and renames the output into place. Returns the SHA-256 when asked.</summary>
    public string? Commit(bool computeSha256)
    {
        WriteTables();
        return Complete(computeSha256);
    }

    /// <summary>
    /// Writes the L1 table, the refcount structures and (without a plan) the header, leaving the rest to
    /// <see cref="Complete"/>, which may run on another thread while the next output is produced.
    /// </summary>
    internal void WriteTables()
    {
        FlushL2();
        AlignToCluster();
        var (l1Offset, l1Clusters, tableOffset, tableClusters, blocks) = TailLayout(_pos);
        if (_plan is not null && l1Offset != _plannedDataEnd)
            throw new InvalidOperationException($"the layout plan ({_plan}) does not match the clusters added ({DataClusters} data, L1 at {l1Offset})");
        var l1Bytes = new byte[l1Clusters * (long)_clusterSize];
        for (int i = 0; i < _l1.Length; i++) BigEndian.Put(l1Bytes, i * 8, _l1[i]);
        _stream.Write(l1Bytes);
        _pos += l1Bytes.Length;

        long perBlock = _clusterSize * 8L / (1 << RefcountOrder);
        long firstBlock = tableOffset + tableClusters * _clusterSize;
        long totalClusters = (tableOffset >> _clusterBits) + tableClusters + blocks;
        var table = new byte[tableClusters * _clusterSize];
        for (long b = 0; b < blocks; b++) BigEndian.Put(table, (int)(b * 8), (ulong)(firstBlock + b * _clusterSize));
        _stream.Write(table);
        var block = new byte[_clusterSize];
        for (long b = 0; b < blocks; b++)
        {
            Array.Clear(block);
            long start = b * perBlock;
            long end = Math.Min(totalClusters, start + perBlock);
            for (long c = start; c < end; c++)
                BigEndian.Put(block, (int)((c - start) * 2), (ushort)(1 + _extraRefs.GetValueOrDefault(c)));
            _stream.Write(block);
        }
        _pos = firstBlock + blocks * _clusterSize;

        if (_plan is null)
            _stream.PatchHead(_header.Build((ulong)l1Offset, (uint)_l1.Length, (ulong)tableOffset, (uint)tableClusters));
    }

    /// <summary>
    /// Finishes writing (after <see cref="WriteTables"/>), flushes, and renames the output into place. Returns the
    /// SHA-256: from the bytes as they were written with a plan, else read back when <paramref name="computeSha256"/>.
    /// </summary>
    internal string? Complete(bool computeSha256)
    {
        string? sha = _stream.Complete();
        if (_output is null)
        {
            // A stream cannot be read back: its hash exists only when it was taken while writing.
            if (computeSha256 && sha is null) throw new InvalidOperationException("a stream output is hashed only when made with sha256");
            return sha;
        }
        return _output.Commit(computeSha256 && sha is null, sha);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _stream.Dispose();
        _output?.Dispose();
    }

    private void Advance(long guestCluster)
    {
        if (guestCluster <= _lastCluster)
            throw new InvalidOperationException($"clusters must be added in increasing order ({guestCluster} after {_lastCluster})");
        if ((guestCluster << _clusterBits) >= _virtualSize)
            throw new InvalidOperationException($"cluster {guestCluster} lies past the virtual size {_virtualSize}");
        long l2Index = guestCluster / _l2Entries;
        if (l2Index != _currentL2)
        {
            FlushL2();
            _currentL2 = l2Index;
        }
        _lastCluster = guestCluster;
    }

    private void FlushL2()
    {
        if (_currentL2 < 0) return;
        AlignToCluster();
        var bytes = new byte[_clusterSize];
        for (int i = 0; i < _l2.Length; i++) BigEndian.Put(bytes, i * 8, _l2[i]);
        _l1[_currentL2] = (ulong)_pos | L2Entry.CopiedFlag;
        _stream.Write(bytes);
        _pos += _clusterSize;
        Array.Clear(_l2);
        _currentL2 = -1;
    }

    private void AlignToCluster()
    {
        long aligned = (_pos + _clusterSize - 1) & ~((long)_clusterSize - 1);
        if (aligned != _pos)
        {
            _stream.WriteZeros((int)(aligned - _pos));
            _pos = aligned;
        }
    }
}
