using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// What a diff found, kept between its two halves (<see cref="DiffWriter.Classify(Views.DiskView, Views.DiskView, WriteOptions, string, Action{ProgressInfo}, CancellationToken)"/> and
/// <see cref="DiffWriter.Emit"/>): the guest clusters to store, in order, as runs of data, compressed or zero clusters,
/// and what a <see cref="QcowWriter"/> needs to place its tables before writing anything. A compressed cluster's
/// stream is not kept, only its length's effect on the layout: compression is deterministic, so the second half
/// compresses the cluster again and gets the same bytes.
/// </summary>
internal sealed class DiffPlan
{
    /// <summary>
    /// At most this many runs are kept (16 bytes each, 32 MiB in all). Real chains need far fewer (a run covers
    /// adjacent clusters changed alike); a diff scattered finer than that is written in one pass instead.
    /// </summary>
    internal const int MaxRuns = 2 << 20;

    /// <summary>
    /// The bound for an output that cannot be written in one pass (a stream, which cannot seek back to the header):
    /// 8 Mi runs, 128 MiB, enough for a diff that alternates cluster by cluster over 1 TiB of 64 KiB clusters.
    /// </summary>
    internal const int MaxStreamRuns = 8 << 20;

    private readonly HostLayout _layout;
    private readonly int _maxRuns;
    private readonly List<Run> _runs = new();

    internal DiffPlan(WriteOptions options, int maxRuns = MaxRuns)
    {
        _layout = new HostLayout(options);
        _maxRuns = maxRuns;
    }

    /// <summary>Consecutive guest clusters stored alike.</summary>
    internal readonly record struct Run(long Start, int Count, DiffScan.Outcome Kind);

    internal IReadOnlyList<Run> Runs => _runs;

    /// <summary>Clusters to store as data.</summary>
    public long DataClusters { get; private set; }
    /// <summary>Clusters to store as zero clusters.</summary>
    public long ZeroClusters { get; private set; }
    /// <summary>L2 tables the output will hold.</summary>
    public long L2Tables => _layout.L2Tables;
    /// <summary>Bytes read from data clusters while comparing.</summary>
    public long BytesRead { get; internal set; }
    /// <summary>Clusters read and compared.</summary>
    public long ClustersCompared { get; internal set; }

    /// <summary>What a <see cref="QcowWriter"/> takes to write its header first.</summary>
    public LayoutPlan Layout => new(DataClusters, ZeroClusters, L2Tables, _layout.DataEnd);

    /// <summary>Adds one cluster to store; <paramref name="length"/> is a compressed stream's length.</summary>
    internal void Add(long cluster, DiffScan.Outcome kind, int length)
    {
        switch (kind)
        {
            case DiffScan.Outcome.Data: _layout.Data(cluster); DataClusters++; break;
            case DiffScan.Outcome.Compressed: _layout.Compressed(cluster, length); DataClusters++; break;
            case DiffScan.Outcome.Zero: _layout.Zero(cluster); ZeroClusters++; break;
            default: throw new ArgumentOutOfRangeException(nameof(kind), kind, "only data, compressed and zero clusters are stored");
        }
        if (_runs.Count > 0)
        {
            var last = _runs[^1];
            if (last.Kind == kind && last.Start + last.Count == cluster && last.Count < int.MaxValue)
            {
                _runs[^1] = last with { Count = last.Count + 1 };
                return;
            }
        }
        if (_runs.Count >= _maxRuns) throw new TooLargeException();
        _runs.Add(new Run(cluster, 1, kind));
    }

    /// <summary>Thrown by <see cref="Add"/> past its bound of runs; the caller falls back to one pass, or refuses.</summary>
    internal sealed class TooLargeException : Exception;
}
