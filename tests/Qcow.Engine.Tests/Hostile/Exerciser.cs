using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Engine.Views;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>How one run of the engine over a hostile file ended.</summary>
public enum OutcomeKind
{
    /// <summary>Every state read, map and check completed.</summary>
    Read,
    /// <summary>A <see cref="QcowException"/>: the promised outcome for bad input.</summary>
    TypedError,
    /// <summary>Any other exception escaped: a bug.</summary>
    Crash,
    /// <summary>The run did not finish within its time bound: a bug.</summary>
    Hang,
}

/// <summary>The outcome, with the current state's raw bytes when they were small enough to keep.</summary>
public sealed record Outcome(OutcomeKind Kind, Exception? Error, byte[]? CurrentState, long CurrentSize)
{
    /// <summary>A one-line description for assertion messages.</summary>
    public override string ToString() => Error is null ? Kind.ToString() : $"{Kind}: {Error.GetType().Name}: {Error.Message}";
}

/// <summary>
/// Runs everything that reads an image: info, the current state and every snapshot through the views (all bytes),
/// map, check, and an export (convert). Each run is bounded in time, so a hang fails the test instead of stalling it.
/// </summary>
public static class Exerciser
{
    /// <summary>Current states up to this size are kept in memory for comparison with qemu.</summary>
    public const long KeepLimit = 64L << 20;

    /// <summary>
    /// How long one run may take before it counts as a hang. A hang detector, not a timing: a case (images of a few
    /// MiB) takes milliseconds, so no load brings a run that ends near it; only a run that never ends reaches it.
    /// </summary>
    public static TimeSpan TimeBound { get; } = TimeSpan.FromSeconds(
        int.TryParse(Environment.GetEnvironmentVariable("QCOW_FUZZ_CASE_SECONDS"), out int s) ? s : 120);

    /// <summary>Runs <paramref name="path"/> through the engine within <see cref="TimeBound"/>.</summary>
    public static Outcome Run(string path, BackingPolicy? policy = null)
    {
        var task = Task.Run(() => RunUnbounded(path, policy));
        if (!task.Wait(TimeBound)) return new Outcome(OutcomeKind.Hang, new TimeoutException($"no result within {TimeBound.TotalSeconds} s"), null, 0);
        return task.Result;
    }

    private static Outcome RunUnbounded(string path, BackingPolicy? policy)
    {
        // The export path reads in parallel batches: whatever the reads above concluded, it too must end in success or
        // in one QcowException (not, say, an AggregateException around one).
        var read = Read(path, policy);
        if (read.Kind == OutcomeKind.Crash || read.CurrentSize > KeepLimit) return read;
        string output = path + ".exported.qcow2";
        try
        {
            ConvertOperation.Run(new ConvertRequest { Source = path, Output = output, Policy = policy });
        }
        catch (QcowException)
        {
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Crash, new InvalidOperationException($"convert: {e.GetType().Name}: {e.Message}", e), null, 0);
        }
        finally
        {
            File.Delete(output);
        }
        return read;
    }

    private static Outcome Read(string path, BackingPolicy? policy)
    {
        try
        {
            InfoOperation.Run(new InfoRequest { Image = path, BackingChain = true, Policy = policy });
            byte[]? current;
            long size;
            using (var set = new ImageSet(policy))
            {
                var view = set.View(path);
                size = view.Size;
                current = ReadAll(view, size <= KeepLimit);
                var top = set.Chain(path)[0];
                foreach (var snapshot in (top as QcowLink)?.Snapshots ?? [])
                    ReadAll(set.View(path, $"snapshot.id={snapshot.Id}"), keep: false);
            }
            MapOperation.Run(new MapRequest { Image = path, Policy = policy });
            if (Probe(path) == "qcow2") CheckOperation.Run(new CheckRequest { Image = path });
            return new Outcome(OutcomeKind.Read, null, current, size);
        }
        catch (QcowException e)
        {
            return new Outcome(OutcomeKind.TypedError, e, null, 0);
        }
        catch (Exception e)
        {
            return new Outcome(OutcomeKind.Crash, e, null, 0);
        }
    }

    /// <summary>
    /// Reads every byte of <paramref name="view"/> through its extents; returns them when <paramref name="keep"/>.
    /// Runs that read as zeros are not materialised, so a large sparse disk costs only its extents.
    /// </summary>
    public static byte[]? ReadAll(DiskView view, bool keep)
    {
        byte[]? all = keep ? new byte[view.Size] : null;
        var buffer = new byte[1 << 20];
        long offset = 0;
        while (offset < view.Size)
        {
            var e = view.GetExtent(offset, Math.Min(buffer.Length, view.Size - offset));
            if (!e.ReadsAsZero)
            {
                var span = buffer.AsSpan(0, (int)e.Length);
                DiskView.ReadExtent(e, span);
                if (all is not null) span.CopyTo(all.AsSpan((int)offset));
            }
            offset += e.Length;
        }
        return all;
    }

    private static string Probe(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var f = File.OpenRead(path);
        return f.Read(magic) == 4 && magic.SequenceEqual((ReadOnlySpan<byte>)[0x51, 0x46, 0x49, 0xfb]) ? "qcow2" : "raw";
    }
}
