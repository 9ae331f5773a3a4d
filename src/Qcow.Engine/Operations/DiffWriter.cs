using System.Buffers;
using Qcow.Engine.Compression;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// Writes the guest clusters where one disk state differs from another: the core of convert, convert -d and
/// linearize. <see cref="DiffScan"/> finds them, in guest order; this stores them in a writer, in one pass
/// (<see cref="Write"/>) or planned (<see cref="Classify(DiskView, DiskView, WriteOptions, string, Action{ProgressInfo}, CancellationToken)"/>,
/// then <see cref="Emit"/>), letting a qcow2 writer clone data clusters that lie unchanged in a source file.
/// </summary>
internal static class DiffWriter
{
    /// <summary>
    /// Writes to <paramref name="writer"/> every cluster of <paramref name="top"/> that differs from
    /// <paramref name="below"/> (a <see cref="ZeroView"/> for a standalone image). With a null
    /// <paramref name="below"/>, writes what <paramref name="top"/>'s own image allocates, unread below (qemu-img
    /// convert -B: the output's backing file is the caller's promise).
    /// </summary>
    public static LayerStats Write(DiskView top, DiskView? below, IClusterSink writer, string stage,
        Action<ProgressInfo>? progress, CancellationToken cancel)
    {
        var (bytesRead, compared) = DiffScan.Scan(top, below, writer.ClusterSize, writer.Options, stage, progress, cancel,
            () => writer is not QcowWriter q || !q.MayLeaveUnfilled, (c, outcome, data, whole) =>
            {
                switch (outcome)
                {
                    case DiffScan.Outcome.Zero: writer.AddZero(c); break;
                    case DiffScan.Outcome.Data when writer is QcowWriter q: AddDataCloning(q, top, c, data, whole); break;
                    case DiffScan.Outcome.Data: writer.AddData(c, data); break;
                    case DiffScan.Outcome.Compressed: writer.AddCompressed(c, data); break;
                }
            });
        return new LayerStats
        {
            BytesRead = bytesRead,
            ClustersCompared = compared,
            DataClusters = writer.DataClusters,
            ZeroClusters = writer.ZeroClusters,
        };
    }

    /// <summary>
    /// The first half of a planned write: finds which clusters of <paramref name="top"/> differ from
    /// <paramref name="below"/> and how <see cref="Write"/> would store them (compressing them when the options say
    /// so, to learn their lengths) without storing anything. Returns null when the result would take too much memory
    /// to keep (see <see cref="DiffPlan.MaxRuns"/>); the caller then writes in one pass instead.
    /// </summary>
    public static DiffPlan? Classify(DiskView top, DiskView? below, WriteOptions options, string stage,
        Action<ProgressInfo>? progress, CancellationToken cancel) =>
        Classify(top, below, options, stage, progress, cancel, DiffPlan.MaxRuns);

    internal static DiffPlan? Classify(DiskView top, DiskView? below, WriteOptions options, string stage,
        Action<ProgressInfo>? progress, CancellationToken cancel, int maxRuns)
    {
        var plan = new DiffPlan(options, maxRuns);
        long bytesRead, compared;
        try
        {
            (bytesRead, compared) = DiffScan.Scan(top, below, options.ClusterSize, options, stage, progress, cancel,
                () => false, (c, outcome, bytes, _) => plan.Add(c, outcome, bytes.Length));
        }
        catch (DiffPlan.TooLargeException)
        {
            return null;
        }
        plan.BytesRead = bytesRead;
        plan.ClustersCompared = compared;
        return plan;
    }

    /// <summary>
    /// The second half of a planned write: stores the clusters <paramref name="plan"/> found, reading the data
    /// clusters from <paramref name="top"/> straight into the output and compressing the compressed ones again. The
    /// writer must have been made with <see cref="DiffPlan.Layout"/>. <paramref name="progress"/>, when given, hears
    /// how far the writing has come, as <paramref name="stage"/>.
    /// </summary>
    public static LayerStats Emit(DiffPlan plan, DiskView top, QcowWriter writer, CancellationToken cancel,
        Action<ProgressInfo>? progress = null, string stage = "")
    {
        int cs = writer.ClusterSize;
        long size = top.Size;
        void Report(long cluster) => progress?.Invoke(new ProgressInfo(Math.Min(size, cluster * cs), size, stage));
        foreach (var run in plan.Runs)
        {
            cancel.ThrowIfCancellationRequested();
            long end = run.Start + run.Count;
            if (run.Kind == DiffScan.Outcome.Zero)
            {
                for (long c = run.Start; c < end; c++) writer.AddZero(c);
                continue;
            }
            if (run.Kind == DiffScan.Outcome.Compressed)
            {
                EmitCompressed(run.Start, end, top, writer, cancel, Report);
                continue;
            }
            // Adjacent data clusters are read together, straight into the output: one lookup and one read per
            // stretch that is contiguous in the source, rather than per cluster.
            for (long c = run.Start; c < end;)
            {
                var target = writer.BeginData(c, end - c, out int count);
                long start = c * cs;
                int len = (int)Math.Min(target.Length, size - start);
                ReadIntoOutput(top, start, target[..len], writer);
                writer.EndData(count, len);
                c += count;
                Report(c);
            }
        }
        progress?.Invoke(new ProgressInfo(size, size, stage));
        return new LayerStats
        {
            BytesRead = plan.BytesRead,
            ClustersCompared = plan.ClustersCompared,
            DataClusters = writer.DataClusters,
            ZeroClusters = writer.ZeroClusters,
        };
    }

    /// <summary>
    /// Reads and compresses guest clusters <paramref name="start"/> to <paramref name="end"/> (exclusive) in parallel
    /// batches and stores the streams in order. They are the bytes the first pass measured: compression is
    /// deterministic (the writer checks the total when it places its tables).
    /// </summary>
    private static void EmitCompressed(long start, long end, DiskView top, QcowWriter writer, CancellationToken cancel, Action<long> report)
    {
        int cs = writer.ClusterSize;
        int maxCompressed = cs + 1024;
        var type = writer.Options.Codec;
        int n = (int)Math.Min(DiffScan.BatchClusters, end - start);
        var input = new byte[n][];
        var streams = new byte[n][];
        var lengths = new int[n];
        try
        {
            for (int i = 0; i < n; i++)
            {
                input[i] = ArrayPool<byte>.Shared.Rent(cs);
                streams[i] = ArrayPool<byte>.Shared.Rent(maxCompressed);
            }
            for (long first = start; first < end; first += n)
            {
                int count = (int)Math.Min(n, end - first);
                DiffScan.InParallel(count, cancel, i =>
                {
                    var t = input[i].AsSpan(0, cs);
                    DiffScan.ReadCounting(top, (first + i) * cs, t);
                    lengths[i] = ClusterCompression.Compress(type, t, streams[i].AsSpan(0, maxCompressed));
                });
                for (int i = 0; i < count; i++)
                {
                    if (lengths[i] == 0)
                        throw new InvalidOperationException($"cluster {first + i} compressed in the first pass but not in the second");
                    writer.AddCompressed(first + i, streams[i].AsSpan(0, lengths[i]));
                }
                report(first + count);
            }
        }
        finally
        {
            DiffScan.Return(input);
            DiffScan.Return(streams);
        }
    }

    /// <summary>
    /// Reads guest bytes into the output at a cluster boundary, and tells the writer which of them are whole clusters
    /// of a source file, unchanged (uncompressed data at a cluster-aligned host offset, inside the file): those it may
    /// clone instead of writing. Those are read only when the output needs the bytes (to hash them): otherwise the
    /// output reads them itself if the clone is refused.
    /// </summary>
    private static void ReadIntoOutput(DiskView view, long offset, Span<byte> buffer, QcowWriter writer)
    {
        int cs = writer.ClusterSize;
        for (int at = 0; at < buffer.Length;)
        {
            var e = view.GetExtent(offset + at, buffer.Length - at);
            int n = (int)e.Length;
            bool unfilled = at % cs == 0 && Clonable(e, cs) &&
                writer.CloneData(at, e.File!.Handle, (long)e.HostOffset, n, mayLeaveUnfilled: true);
            if (!unfilled) DiskView.ReadExtent(e, buffer.Slice(at, n));
            at += n;
        }
    }

    /// <summary>Stores a data cluster of the one-pass write, telling the writer where it lies unchanged in a source (see <see cref="ReadIntoOutput"/>).</summary>
    private static void AddDataCloning(QcowWriter writer, DiskView top, long cluster, ReadOnlySpan<byte> data, bool whole)
    {
        int cs = writer.ClusterSize;
        var target = writer.BeginData(cluster, 1, out _);
        // The same lookups the read made, now in the L2 tables the views keep. A clone the output needs no bytes for
        // spares the copy.
        bool unfilled = data.Length == cs && top.GetExtent(cluster * cs, cs) is var e && e.Length == cs &&
            Clonable(e, cs) && writer.CloneData(0, e.File!.Handle, (long)e.HostOffset, cs, mayLeaveUnfilled: true);
        // A cluster the first page decided holds only that page here: the rest is read now, when the clone is not taken.
        if (!unfilled && whole) data.CopyTo(target);
        else if (!unfilled) DiffScan.ReadCounting(top, cluster * cs, target[..data.Length]);
        writer.EndData(1, data.Length);
    }

    /// <summary>
    /// True when <paramref name="e"/> is whole clusters of uncompressed data at a cluster-aligned host offset inside
    /// its file: bytes a cluster-aligned output range may share with the source.
    /// </summary>
    private static bool Clonable(in Extent e, int cs) =>
        e.Kind == ExtentKind.Data && e.File is { } file && e.Length % cs == 0 &&
        (long)e.HostOffset % cs == 0 && (long)e.HostOffset + e.Length <= file.Length;
}
