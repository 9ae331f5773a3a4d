using System.Runtime.ExceptionServices;
using System.Threading.Channels;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Pipeline;

/// <summary>
/// The one pipeline that writes layers and exports: plan (the caller), then three overlapping stages. A classifier
/// compares each output's state with the one below (reads and compares the sources), in write order; two writers
/// (the caller's thread and one more) each take the next output classified and write it, reading its data clusters
/// straight into the output; a committer finishes each output (its last writes, its hash, the flush and the rename), in output order, each after
/// the one below. So the disk works while the sources are read, and outputs appear one by one, complete. A single
/// output (an export) has nothing to overlap with: its stages run in turn on the caller's thread.
/// </summary>
/// <remarks>
/// Bounded: the classifier runs at most one output ahead of the writers (a bounded channel), and at most
/// <see cref="MaxOutputsInFlight"/> outputs are open at once, those being written included. The first failure of any
/// stage cancels the others; when all have stopped and every output is disposed (uncommitted ones leave no temporary
/// file), it is thrown as one <see cref="QcowException"/> naming the output, or as the caller's
/// <see cref="OperationCanceledException"/>. The buffers are the run's (<see cref="ChunkPool"/>) and freed at its end.
/// </remarks>
internal static class OutputPipeline
{
    /// <summary>
    /// Outputs open at once: the ones being written and those written, waiting to commit (an output commits after the
    /// one below it: while the bottom layer, usually the largest, is written and hashed, the layers above it are too).
    /// </summary>
    public const int MaxOutputsInFlight = 5;

    /// <summary>
    /// Outputs written at once. Each hashes on a thread of its own: with two, a large output's one SHA-256 stream no
    /// longer holds back the outputs after it, and both cores hash.
    /// </summary>
    public const int Writers = 2;

    /// <summary>
    /// Makes <paramref name="outputs"/> (in output order: the commit order) writing them in
    /// <paramref name="writeOrder"/> (a permutation of their indexes).
    /// </summary>
    public static void Run(IReadOnlyList<PipelineOutput> outputs, IReadOnlyList<int> writeOrder, CancellationToken cancel)
    {
        CheckWriteOrder(outputs.Count, writeOrder);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var pool = new ChunkPool();
        var failure = new FirstFailure(stop);
        int stagesRunning = outputs.Count == 1 ? RunAlone(outputs[0], pool, failure, stop.Token) : RunOverlapped(outputs, writeOrder, pool, failure, stop);
        foreach (var output in outputs)
        {
            try
            {
                output.Dispose();
            }
            catch (Exception e)
            {
                failure.Record(e, output);
            }
        }
        var end = new PipelineEnd(pool.Outstanding, 0, pool.ThreadsRunning, stagesRunning);
        pool.Dispose();
        PipelineHooks.End(end with { ChunksAllocated = pool.Allocated });
        failure.ThrowIfAny(cancel);
    }

    /// <summary>
    /// One output has nothing to overlap with: its stages run in turn on the caller's thread (no stage threads, no
    /// channels to start). Returns the stages still running: none.
    /// </summary>
    private static int RunAlone(PipelineOutput output, ChunkPool pool, FirstFailure failure, CancellationToken stop)
    {
        try
        {
            output.Classify(stop);
            PipelineHooks.Step("classified:" + output.Name);
            stop.ThrowIfCancellationRequested();
            bool wrote = output.Write(pool, stop);
            if (wrote) PipelineHooks.Step("written:" + output.Name);
            stop.ThrowIfCancellationRequested();
            output.Commit();
            if (wrote) PipelineHooks.Step("committed:" + output.Name);
        }
        catch (Exception e)
        {
            failure.Record(e, output);
        }
        return 0;
    }

    /// <summary>The three stages on their threads, for several outputs. Returns the stages still running (none: it waits for them).</summary>
    private static int RunOverlapped(IReadOnlyList<PipelineOutput> outputs, IReadOnlyList<int> writeOrder, ChunkPool pool,
        FirstFailure failure, CancellationTokenSource stop)
    {
        var classified = Channel.CreateBounded<int>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
        // Not bounded itself: the slots bound what goes in.
        var written = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true });
        var wrote = new bool[outputs.Count];
        using var slots = new SemaphoreSlim(MaxOutputsInFlight);
        int stagesRunning = 2;

        var classifier = Task.Run(async () =>
        {
            PipelineOutput? current = null;
            try
            {
                foreach (int i in writeOrder)
                {
                    stop.Token.ThrowIfCancellationRequested();
                    current = outputs[i];
                    current.Classify(stop.Token);
                    PipelineHooks.Step("classified:" + current.Name);
                    await classified.Writer.WriteAsync(i, stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                failure.Record(e, current);
            }
            finally
            {
                classified.Writer.TryComplete();
                Interlocked.Decrement(ref stagesRunning);
            }
        });

        var committer = Task.Run(async () =>
        {
            PipelineOutput? current = null;
            try
            {
                var ready = new bool[outputs.Count];
                int next = 0;
                await foreach (int i in written.Reader.ReadAllAsync(stop.Token).ConfigureAwait(false))
                {
                    ready[i] = true;
                    for (; next < outputs.Count && ready[next]; next++)
                    {
                        stop.Token.ThrowIfCancellationRequested();
                        current = outputs[next];
                        current.Commit();
                        if (wrote[next]) PipelineHooks.Step("committed:" + current.Name);
                        slots.Release();
                    }
                }
            }
            catch (Exception e)
            {
                failure.Record(e, current);
            }
            finally
            {
                Interlocked.Decrement(ref stagesRunning);
            }
        });

        // Outputs are taken (and their slots) in write order, one writer at a time, so the outputs open are always a
        // prefix of the write order, as with one writer: the order CheckWriteOrder accepts cannot deadlock.
        using var take = new SemaphoreSlim(1);
        int taken = 0, writersRunning = Writers;
        void WriteLoop()
        {
            PipelineOutput? writing = null;
            try
            {
                while (true)
                {
                    int i;
                    take.Wait(stop.Token);
                    try
                    {
                        if (taken == writeOrder.Count) return;
                        taken++;
                        // Closed early only when the classifier failed: that failure is the run's.
                        if (!classified.Reader.WaitToReadAsync(stop.Token).AsTask().GetAwaiter().GetResult()) return;
                        classified.Reader.TryRead(out i);
                        slots.Wait(stop.Token);
                    }
                    finally
                    {
                        take.Release();
                    }
                    writing = outputs[i];
                    wrote[i] = writing.Write(pool, stop.Token);
                    if (wrote[i]) PipelineHooks.Step("written:" + writing.Name);
                    written.Writer.TryWrite(i);
                    writing = null;
                }
            }
            catch (Exception e)
            {
                failure.Record(e, writing);
            }
            finally
            {
                // The last writer out ends the committer's input.
                if (Interlocked.Decrement(ref writersRunning) == 0) written.Writer.TryComplete();
            }
        }

        // The second writer on a thread of its own: it blocks on reads and on its output's buffers for whole outputs.
        var second = new Thread(WriteLoop) { IsBackground = true, Name = "qcow output writer" };
        second.Start();
        WriteLoop();
        second.Join();

        // The stages catch everything: these waits only wait.
        classifier.GetAwaiter().GetResult();
        committer.GetAwaiter().GetResult();
        return Volatile.Read(ref stagesRunning);
    }

    /// <summary>
    /// Refuses a write order that is not a permutation, or that writes an output so far ahead of one below it that
    /// the bound would be reached with nothing committable (the committer goes bottom first): a deadlock.
    /// </summary>
    private static void CheckWriteOrder(int count, IReadOnlyList<int> writeOrder)
    {
        var written = new bool[count];
        int lowest = 0, open = 0;
        foreach (int i in writeOrder)
        {
            if (i < 0 || i >= count || written[i] || writeOrder.Count != count)
                throw new ArgumentException("the write order must be a permutation of the outputs", nameof(writeOrder));
            written[i] = true;
            open++;
            if (open > MaxOutputsInFlight) throw new ArgumentException($"the write order keeps more than {MaxOutputsInFlight} outputs open", nameof(writeOrder));
            // What the committer can finish now: the written outputs from the bottom up.
            for (; lowest < count && written[lowest]; lowest++) open--;
        }
    }

    /// <summary>The first failure of a run: it cancels the rest; later ones (mostly that cancellation) are dropped.</summary>
    private sealed class FirstFailure(CancellationTokenSource stop)
    {
        private readonly Lock _lock = new();
        private Exception? _error;
        private PipelineOutput? _output;

        public void Record(Exception e, PipelineOutput? output)
        {
            lock (_lock)
            {
                if (_error is not null) return;
                _error = e;
                _output = output;
            }
            stop.Cancel();
        }

        public void ThrowIfAny(CancellationToken cancel)
        {
            switch (_error)
            {
                case null:
                    return;
                case OperationCanceledException when cancel.IsCancellationRequested:
                    throw new OperationCanceledException(cancel);
                case QcowException q:
                    ExceptionDispatchInfo.Throw(q);
                    return;
                default:
                    throw new QcowException(_output?.Target, _error.Message, _error);
            }
        }
    }
}
