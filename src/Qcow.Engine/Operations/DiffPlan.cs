using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// What a diff found, kept between its two halves (<see cref="DiffWriter.Classify(Views.DiskView, Views.DiskView, WriteOptions, string, Action{ProgressInfo}, CancellationToken)"/> and
/// <see cref="DiffWriter.Emit"/>): the guest clusters to store, in order, as runs of data or zero clusters, and the
/// counts a <see cref="QcowWriter"/> needs to place its tables before writing anything.
/// </summary>
public sealed class DiffPlan
{
    /// <summary>
    /// At most this many runs are kept (16 bytes each, 32 MiB in all). Real chains need far fewer (a run covers
    /// adjacent clusters changed alike); a diff scattered finer than that is written in one pass instead.
    /// </summary>
    internal const int MaxRuns = 2 << 20;

    private readonly int _l2Entries;
    private readonly int _maxRuns;
    private readonly List<Run> _runs = new();
    private long _lastL2 = -1;

    internal DiffPlan(int clusterSize, int maxRuns = MaxRuns)
    {
        _l2Entries = clusterSize / 8;
        _maxRuns = maxRuns;
    }

    /// <summary>Consecutive guest clusters stored alike.</summary>
    internal readonly record struct Run(long Start, int Count, DiffWriter.Outcome Kind);

    internal IReadOnlyList<Run> Runs => _runs;

    /// <summary>Clusters to store as data.</summary>
    public long DataClusters { get; private set; }
    /// <summary>Clusters to store as zero clusters.</summary>
    public long ZeroClusters { get; private set; }
    /// <summary>L2 tables the output will hold.</summary>
    public long L2Tables { get; private set; }
    /// <summary>Bytes read from data clusters while comparing.</summary>
    public long BytesRead { get; internal set; }
    /// <summary>Clusters read and compared.</summary>
    public long ClustersCompared { get; internal set; }

    /// <summary>The counts a <see cref="QcowWriter"/> takes to write its header first.</summary>
    public LayoutPlan Layout => new(DataClusters, ZeroClusters, L2Tables);

    internal void Add(long cluster, DiffWriter.Outcome kind)
    {
        if (kind is not (DiffWriter.Outcome.Data or DiffWriter.Outcome.Zero))
            throw new ArgumentOutOfRangeException(nameof(kind), kind, "only data and zero clusters are planned");
        if (kind == DiffWriter.Outcome.Data) DataClusters++; else ZeroClusters++;
        long l2 = cluster / _l2Entries;
        if (l2 != _lastL2) { L2Tables++; _lastL2 = l2; }
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

    /// <summary>Thrown by <see cref="Add"/> past <see cref="MaxRuns"/>; the caller falls back to one pass.</summary>
    internal sealed class TooLargeException : Exception;
}
