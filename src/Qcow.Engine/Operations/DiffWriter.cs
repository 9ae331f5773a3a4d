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
                belowBufs[i] = ArrayPool<byte>.Shared.Rent(Math.Max(cs, writer.Options.Compress ? maxCompressed : 0));
            }

            void RunBatch()
            {
                cancel.ThrowIfCancellationRequested();
                int n = batch.Count;
                long[] read = new long[n];
                Parallel.For(0, n, new ParallelOptions { CancellationToken = cancel }, i =>
                {
                    long c = batch[i];
                    long start = c * cs;
                    int len = (int)Math.Min(cs, size - start);
                    var t = topBufs[i].AsSpan(0, len);
                    var b = belowBufs[i].AsSpan(0, len);
                    read[i] = ReadCounting(top, start, t);
                    if (below is not null)
                    {
                        if (ReadsAsZero(below, start, len))
                        {
                            // Nothing to read below: equal exactly when the top cluster is all zeros.
                            if (!t.ContainsAnyExcept((byte)0)) { results[i] = new Result(Outcome.Same, 0); return; }
                        }
                        else
                        {
                            read[i] += ReadCounting(below, start, b);
                            if (t.SequenceEqual(b)) { results[i] = new Result(Outcome.Same, 0); return; }
                            if (!t.ContainsAnyExcept((byte)0)) { results[i] = new Result(Outcome.Zero, 0); return; }
                        }
                    }
                    else if (!t.ContainsAnyExcept((byte)0)) { results[i] = new Result(Outcome.Zero, 0); return; }
                    if (writer.Options.Compress && len == cs)
                    {
                        // The below buffer is no longer needed: compress into it.
                        int clen = ClusterCompression.Compress(writer.Options.CompressionType, t, belowBufs[i].AsSpan(0, maxCompressed));
                        if (clen > 0) { results[i] = new Result(Outcome.Compressed, clen); return; }
                    }
                    results[i] = new Result(Outcome.Data, len);
                });
                for (int i = 0; i < n; i++)
                {
                    bytesRead += read[i];
                    long c = batch[i];
                    switch (results[i].Outcome)
                    {
                        case Outcome.Zero: writer.AddZero(c); break;
                        case Outcome.Data: writer.AddData(c, topBufs[i].AsSpan(0, results[i].Length)); break;
                        case Outcome.Compressed: writer.AddCompressed(c, belowBufs[i].AsSpan(0, results[i].Length)); break;
                    }
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
        catch (AggregateException e) when (e.InnerExceptions[0] is QcowException)
        {
            // Parallel.For wraps what the readers threw: a bad image must still surface as its one typed error.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]);
            throw;
        }
        finally
        {
            foreach (var b in topBufs) if (b is not null) ArrayPool<byte>.Shared.Return(b);
            foreach (var b in belowBufs) if (b is not null) ArrayPool<byte>.Shared.Return(b);
        }
        return new LayerStats
        {
            BytesRead = bytesRead,
            ClustersCompared = compared,
            DataClusters = writer.DataClusters,
            ZeroClusters = writer.ZeroClusters,
        };
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
