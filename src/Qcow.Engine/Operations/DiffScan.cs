using System.Buffers;
using Qcow.Engine.Compression;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// Finds the guest clusters where one disk state differs from another, and how each is to be stored: the reading half
/// of convert, convert -d and linearize (<see cref="DiffWriter"/> stores what it finds). Metadata first: both states
/// are walked as runs of "where the bytes live"; runs that live in the same place (same file and host offset, or both
/// zero) are equal without reading a byte. Only the remaining clusters are read (in parallel, positional reads) and
/// compared; results are handed on in guest order, so output is deterministic.
/// </summary>
internal static class DiffScan
{
    /// <summary>Clusters read at once, in parallel: a batch compared here, or compressed again by <see cref="DiffWriter"/>.</summary>
    internal const int BatchClusters = 64;

    /// <summary>
    /// How much of a cluster the plan's first pass reads before it knows more: one page. Data clusters are rarely all
    /// zeros and clusters that differ mostly differ in their first page, so a page settles most of them, and the
    /// second pass reads the cluster anyway (or clones it unread).
    /// </summary>
    private const int ProbeBytes = 4096;

    /// <summary>
    /// Walks both states and calls <paramref name="store"/> in guest order for each cluster to store, with the outcome
    /// and the bytes (data or compressed stream). Returns bytes read from data clusters and clusters compared.
    /// </summary>
    internal static (long BytesRead, long Compared) Scan(DiskView top, DiskView? below, int cs, WriteOptions options, string stage,
        Action<ProgressInfo>? progress, CancellationToken cancel, Func<bool> wantsBytes, StoreCluster store)
    {
        long size = top.Size;
        long bytesRead = 0, compared = 0;
        var batch = new List<long>(BatchClusters);
        var results = new Result[BatchClusters];
        var topBufs = new byte[BatchClusters][];
        var belowBufs = new byte[BatchClusters][];
        int maxCompressed = cs + 1024;
        try
        {
            for (int i = 0; i < BatchClusters; i++)
            {
                topBufs[i] = ArrayPool<byte>.Shared.Rent(cs);
                belowBufs[i] = ArrayPool<byte>.Shared.Rent(Math.Max(cs, options.Compress ? maxCompressed : 0));
            }

            void RunBatch()
            {
                cancel.ThrowIfCancellationRequested();
                int n = batch.Count;
                long[] read = new long[n];
                var known = new Known[n];
                // Whole clusters are needed to compress them, or when the caller stores the bytes it is given (asked
                // per batch: a writer that clones stops needing them); otherwise a page decides most clusters.
                int probe = options.Compress || wantsBytes() ? int.MaxValue : ProbeBytes;
                void Whole(int i)
                {
                    long start = batch[i] * cs;
                    int len = (int)Math.Min(cs, size - start);
                    results[i] = Compare(top, below, start, topBufs[i].AsSpan(0, len), belowBufs[i].AsSpan(0, len), known[i], ref read[i]);
                    if (results[i].Outcome == Outcome.Data && options.Compress && len == cs)
                    {
                        // The below buffer is no longer needed: compress into it.
                        int clen = ClusterCompression.Compress(options.Codec, topBufs[i].AsSpan(0, len), belowBufs[i].AsSpan(0, maxCompressed));
                        if (clen > 0) results[i] = new Result(Outcome.Compressed, clen);
                    }
                }
                if (probe >= cs)
                {
                    InParallel(n, cancel, Whole);
                }
                else
                {
                    // A page is a short read: the pages go one after the other on this thread (handing them to other
                    // threads costs more than reading them), and only the clusters they leave open are read whole, in
                    // parallel.
                    var open = new List<int>();
                    for (int i = 0; i < n; i++)
                    {
                        long start = batch[i] * cs;
                        int len = (int)Math.Min(cs, size - start);
                        if (Probe(top, below, start, topBufs[i].AsSpan(0, len), belowBufs[i].AsSpan(0, len), probe, ref read[i], out known[i]) is { } r)
                            results[i] = r;
                        else
                            open.Add(i);
                    }
                    if (open.Count == 1) Whole(open[0]);
                    else if (open.Count > 1) InParallel(open.Count, cancel, j => Whole(open[j]));
                }
                for (int i = 0; i < n; i++)
                {
                    bytesRead += read[i];
                    long c = batch[i];
                    var r = results[i];
                    if (r.Outcome != Outcome.Same)
                        store(c, r.Outcome, r.Outcome == Outcome.Compressed ? belowBufs[i].AsSpan(0, r.Length) : topBufs[i].AsSpan(0, r.Length), r.Whole);
                }
                compared += n;
                progress?.Invoke(new ProgressInfo(Math.Min(size, (batch[^1] + 1) * cs), size, stage));
                batch.Clear();
            }

            long lastCandidate = -1;
            long offset = 0;
            long lastReport = 0;
            while (offset < size)
            {
                long remaining = size - offset;
                var et = top.GetExtent(offset, remaining);
                long len = et.Length;
                bool candidate;
                if (below is null)
                {
                    candidate = et.Depth == 0 && et.Kind != ExtentKind.Unallocated;
                }
                else
                {
                    var eb = below.GetExtent(offset, et.Length);
                    len = Math.Min(et.Length, eb.Length);
                    candidate = !et.Take(len).SameSourceAs(eb.Take(len));
                }
                if (candidate)
                {
                    long first = Math.Max(offset / cs, lastCandidate + 1);
                    long last = (offset + len - 1) / cs;
                    for (long c = first; c <= last; c++)
                    {
                        batch.Add(c);
                        if (batch.Count == BatchClusters) RunBatch();
                    }
                    lastCandidate = Math.Max(lastCandidate, last);
                }
                offset += len;
                if (offset - lastReport >= 1L << 30)
                {
                    cancel.ThrowIfCancellationRequested();
                    progress?.Invoke(new ProgressInfo(offset, size, stage));
                    lastReport = offset;
                }
            }
            if (batch.Count > 0) RunBatch();
            progress?.Invoke(new ProgressInfo(size, size, stage));
        }
        finally
        {
            Return(topBufs);
            Return(belowBufs);
        }
        return (bytesRead, compared);
    }

    /// <summary>
    /// Decides from the first <paramref name="probe"/> bytes alone, when they can: a first page that is not all zeros
    /// and differs from the one below (or has nothing below) makes the cluster data. Otherwise returns null and says
    /// in <paramref name="known"/> what was read and learned, for <see cref="Compare"/> to go on from.
    /// </summary>
    private static Result? Probe(DiskView top, DiskView? below, long start, Span<byte> t, Span<byte> b, int probe,
        ref long read, out Known known)
    {
        int p = Math.Min(probe, t.Length);
        read += ReadCounting(top, start, t[..p]);
        bool belowData = below is not null && !ReadsAsZero(below, start, t.Length);
        bool differs = false;
        if (belowData)
        {
            read += ReadCounting(below!, start, b[..p]);
            differs = !t[..p].SequenceEqual(b[..p]);
        }
        known = new Known(p, belowData ? p : 0, differs);
        if ((differs || !belowData) && t[..p].ContainsAnyExcept((byte)0))
            return new Result(Outcome.Data, t.Length, Whole: p == t.Length);
        return null;
    }

    /// <summary>
    /// Reads the rest of the guest cluster at <paramref name="start"/> (<paramref name="known"/>: what
    /// <see cref="Probe"/> read; <see cref="Known.Nothing"/> to read it all) and decides: the same as below, all
    /// zeros, or data. Below is read only when that can still decide (the first pages were equal).
    /// </summary>
    private static Result Compare(DiskView top, DiskView? below, long start, Span<byte> t, Span<byte> b, Known known, ref long read)
    {
        read += ReadCounting(top, start + known.Top, t[known.Top..]);
        bool zeros = !t.ContainsAnyExcept((byte)0);
        var data = new Result(Outcome.Data, t.Length);
        if (below is null) return zeros ? new Result(Outcome.Zero, 0) : data;
        bool belowData = known.Top > 0 ? known.Below > 0 : !ReadsAsZero(below, start, t.Length);
        // Nothing to read below: equal exactly when the top cluster is all zeros.
        if (!belowData) return zeros ? new Result(Outcome.Same, 0) : data;
        if (!known.Differs)
        {
            read += ReadCounting(below, start + known.Below, b[known.Below..]);
            if (t.SequenceEqual(b)) return new Result(Outcome.Same, 0);
        }
        return zeros ? new Result(Outcome.Zero, 0) : data;
    }

    /// <summary>What <see cref="Probe"/> read of the top and below clusters, and whether those bytes differ.</summary>
    private readonly record struct Known(int Top, int Below, bool Differs)
    {
        public static Known Nothing => default;
    }

    /// <summary>Runs <paramref name="body"/> for 0 to <paramref name="count"/> - 1 in parallel.</summary>
    internal static void InParallel(int count, CancellationToken cancel, Action<int> body)
    {
        try
        {
            Parallel.For(0, count, new ParallelOptions { CancellationToken = cancel }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions[0] is QcowException)
        {
            // Parallel.For wraps what the readers threw: a bad image must still surface as its one typed error.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
            throw;
        }
    }

    /// <summary>Gives back the pooled buffers of <paramref name="buffers"/> that were rented.</summary>
    internal static void Return(byte[][] buffers)
    {
        foreach (var b in buffers) if (b is not null) ArrayPool<byte>.Shared.Return(b);
    }

    /// <summary>True when every byte of the range reads as zero without touching a file (no read needed).</summary>
    private static bool ReadsAsZero(DiskView view, long offset, int length)
    {
        while (length > 0)
        {
            var e = view.GetExtent(offset, length);
            if (!e.ReadsAsZero) return false;
            length -= (int)e.Length;
            offset += e.Length;
        }
        return true;
    }

    /// <summary>Reads guest bytes, returning how many came from data clusters (zeros cost nothing).</summary>
    internal static long ReadCounting(DiskView view, long offset, Span<byte> buffer)
    {
        long fromData = 0;
        while (!buffer.IsEmpty)
        {
            var e = view.GetExtent(offset, buffer.Length);
            int n = (int)e.Length;
            DiskView.ReadExtent(e, buffer[..n]);
            if (!e.ReadsAsZero) fromData += n;
            buffer = buffer[n..];
            offset += n;
        }
        return fromData;
    }

    /// <summary>What a cluster of the top state is to the output: the same as below (not stored), zeros, data, or data stored compressed.</summary>
    internal enum Outcome : byte { Same, Zero, Data, Compressed }

    internal delegate void StoreCluster(long cluster, Outcome outcome, ReadOnlySpan<byte> bytes, bool whole);

    /// <summary>An outcome; <see cref="Whole"/>: the top buffer holds the whole cluster (else only its first page).</summary>
    private readonly record struct Result(Outcome Outcome, int Length, bool Whole = true);
}
