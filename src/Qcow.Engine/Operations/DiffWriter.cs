using System.Buffers;
using Qcow.Engine.Compression;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// Writes the guest clusters where one disk state differs from another: the core of convert, convert -d and
/// linearize. Metadata first: both states are walked as runs of "where the bytes live"; runs that live in the same
/// place (same file and host offset, or both zero) are equal without reading a byte. Only the remaining clusters are
/// read (in parallel, positional reads) and compared; results are written in guest order, so output is deterministic.
/// </summary>
internal static class DiffWriter
{
    private const int BatchClusters = 64;

    /// <summary>
    /// Writes to <paramref name="writer"/> every cluster of <paramref name="top"/> that differs from
    /// <paramref name="below"/> (a <see cref="ZeroView"/> for a standalone image). With a null
    /// <paramref name="below"/>, writes what <paramref name="top"/>'s own image allocates, unread below (qemu-img
    /// convert -B: the output's backing file is the caller's promise).
    /// </summary>
    public static LayerStats Write(DiskView top, DiskView? below, IClusterSink writer, string stage,
        Action<ProgressInfo>? progress, CancellationToken cancel)
    {
        int cs = writer.ClusterSize;
        long size = top.Size;
        long bytesRead = 0, compared = 0;
        var options = writer.Options;
        // Two batches: while one is read and compared on the thread pool, the caller's thread writes the other's
        // results, so reading, comparing and writing overlap. Batches are written in order: output stays deterministic.
        var filling = new Batch(cs, options.Compress);
        Batch? inflight = null;
        Task? inflightTask = null;

        void Emit(Batch b)
        {
            for (int i = 0; i < b.Count; i++)
            {
                bytesRead += b.Read[i];
                long c = b.Clusters[i];
                switch (b.Results[i].Outcome)
                {
                    case Outcome.Zero: writer.AddZero(c); break;
                    case Outcome.Data: writer.AddData(c, b.Top[i].AsSpan(0, b.Results[i].Length)); break;
                    case Outcome.Compressed: writer.AddCompressed(c, b.Below[i].AsSpan(0, b.Results[i].Length)); break;
                }
            }
            compared += b.Count;
            progress?.Invoke(new ProgressInfo(Math.Min(size, (b.Clusters[b.Count - 1] + 1) * cs), size, stage));
            b.Count = 0;
        }

        void Dispatch()
        {
            cancel.ThrowIfCancellationRequested();
            var previous = inflight;
            inflightTask?.GetAwaiter().GetResult();
            var full = filling;
            inflight = full;
            inflightTask = Task.Run(() => Process(full, top, below, size, options, cancel), cancel);
            if (previous is not null) Emit(previous);
            filling = previous ?? new Batch(cs, options.Compress);
        }

        try
        {
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
                        filling.Clusters[filling.Count++] = c;
                        if (filling.Count == BatchClusters) Dispatch();
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
            if (filling.Count > 0) Dispatch();
            if (inflightTask is not null)
            {
                inflightTask.GetAwaiter().GetResult();
                inflightTask = null;
                Emit(inflight!);
            }
            progress?.Invoke(new ProgressInfo(size, size, stage));
        }
        catch (AggregateException e) when (e.InnerExceptions[0] is QcowException)
        {
            // Parallel.For wraps what the readers threw: a bad image must still surface as its one typed error.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
            throw;
        }
        finally
        {
            // A batch still being read owns its buffers until it stops.
            try { inflightTask?.Wait(); } catch (AggregateException) { }
            filling.Dispose();
            inflight?.Dispose();
        }
        return new LayerStats
        {
            BytesRead = bytesRead,
            ClustersCompared = compared,
            DataClusters = writer.DataClusters,
            ZeroClusters = writer.ZeroClusters,
        };
    }

    /// <summary>Reads and compares the clusters of <paramref name="b"/> in parallel, deciding each one's outcome.</summary>
    private static void Process(Batch b, DiskView top, DiskView? below, long size, WriteOptions options, CancellationToken cancel)
    {
        int cs = options.ClusterSize;
        int maxCompressed = cs + 1024;
        Parallel.For(0, b.Count, new ParallelOptions { CancellationToken = cancel }, i =>
        {
            long start = b.Clusters[i] * cs;
            int len = (int)Math.Min(cs, size - start);
            var t = b.Top[i].AsSpan(0, len);
            b.Read[i] = ReadCounting(top, start, t);
            if (below is not null)
            {
                if (ReadsAsZero(below, start, len))
                {
                    // Nothing to read below: equal exactly when the top cluster is all zeros.
                    if (!t.ContainsAnyExcept((byte)0)) { b.Results[i] = new Result(Outcome.Same, 0); return; }
                }
                else
                {
                    var d = b.Below[i].AsSpan(0, len);
                    b.Read[i] += ReadCounting(below, start, d);
                    if (t.SequenceEqual(d)) { b.Results[i] = new Result(Outcome.Same, 0); return; }
                    if (!t.ContainsAnyExcept((byte)0)) { b.Results[i] = new Result(Outcome.Zero, 0); return; }
                }
            }
            else if (!t.ContainsAnyExcept((byte)0)) { b.Results[i] = new Result(Outcome.Zero, 0); return; }
            if (options.Compress && len == cs)
            {
                // The below buffer is no longer needed: compress into it.
                int clen = ClusterCompression.Compress(options.CompressionType, t, b.Below[i].AsSpan(0, maxCompressed));
                if (clen > 0) { b.Results[i] = new Result(Outcome.Compressed, clen); return; }
            }
            b.Results[i] = new Result(Outcome.Data, len);
        });
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

    /// <summary>One batch of candidate clusters with its pooled buffers.</summary>
    private sealed class Batch : IDisposable
    {
        public readonly long[] Clusters = new long[BatchClusters];
        public readonly Result[] Results = new Result[BatchClusters];
        public readonly long[] Read = new long[BatchClusters];
        public readonly byte[][] Top = new byte[BatchClusters][];
        public readonly byte[][] Below = new byte[BatchClusters][];
        public int Count;

        public Batch(int clusterSize, bool compress)
        {
            for (int i = 0; i < BatchClusters; i++)
            {
                Top[i] = ArrayPool<byte>.Shared.Rent(clusterSize);
                Below[i] = ArrayPool<byte>.Shared.Rent(compress ? clusterSize + 1024 : clusterSize);
            }
        }

        public void Dispose()
        {
            for (int i = 0; i < BatchClusters; i++)
            {
                if (Top[i] is { } t) ArrayPool<byte>.Shared.Return(t);
                if (Below[i] is { } b) ArrayPool<byte>.Shared.Return(b);
                Top[i] = Below[i] = null!;
            }
        }
    }

    /// <summary>Reads guest bytes, returning how many came from data clusters (zeros cost nothing).</summary>
    private static long ReadCounting(DiskView view, long offset, Span<byte> buffer)
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

    private enum Outcome : byte { Same, Zero, Data, Compressed }

    private readonly record struct Result(Outcome Outcome, int Length);
}
