using Qcow.Engine.Operations;
using Qcow.Engine.Pipeline;
using Qcow.Testing;

namespace Qcow.Engine.Tests;

/// <summary>The seed chain, made once for the pipeline tests (they only read it).</summary>
public sealed class SeedChainFixture : IDisposable
{
    private readonly Lazy<(TempDir Dir, string Top)> _chain = new(() =>
    {
        var dir = new TempDir("pipeline-seed");
        return (dir, new ImageBuilder(dir, seed: 77).SeedChain("8M"));
    });

    /// <summary>The top image of the seed chain (imageC.qcow2).</summary>
    public string Top => _chain.Value.Top;

    public void Dispose()
    {
        if (_chain.IsValueCreated) _chain.Value.Dir.Dispose();
    }
}

/// <summary>
/// The write pipeline's failure semantics (<see cref="OutputPipeline"/>): whatever stage fails (classify, write, the
/// hash thread, commit), the run ends in one <see cref="QcowException"/> naming the output, leaves no temporary file
/// and no chain.json behind, and ends every thread and stage it started and every buffer it took. Faults are
/// injected at named steps (<see cref="PipelineHooks"/>), never timed.
/// </summary>
public class PipelineTests(SeedChainFixture seed) : IClassFixture<SeedChainFixture>
{
    private const string TempMarker = ".qcow-tmp-";

    /// <summary>Runs <paramref name="run"/> with hooks installed; returns the steps seen and how the pipeline ended.</summary>
    private static (List<string> Steps, List<PipelineEnd> Ends) Hooked(Action<string> onStep, Action run)
    {
        var steps = new List<string>();
        var ends = new List<PipelineEnd>();
        var previousStep = PipelineHooks.OnStep;
        var previousEnd = PipelineHooks.OnEnd;
        PipelineHooks.OnStep = s =>
        {
            lock (steps) steps.Add(s);
            onStep(s);
        };
        PipelineHooks.OnEnd = e => { lock (ends) ends.Add(e); };
        try
        {
            run();
        }
        finally
        {
            PipelineHooks.OnStep = previousStep;
            PipelineHooks.OnEnd = previousEnd;
        }
        return (steps, ends);
    }

    private static void AssertNothingLeft(string folder, IEnumerable<PipelineEnd> ends)
    {
        var end = Assert.Single(ends);
        Assert.Equal(new PipelineEnd(0, 0, 0, 0), end);
        var temporaries = Directory.Exists(folder)
            ? Directory.EnumerateFiles(folder).Where(f => Path.GetFileName(f).Contains(TempMarker, StringComparison.Ordinal)).ToList()
            : [];
        Assert.Empty(temporaries);
    }

    [SkippableTheory]
    [InlineData("classified:imageA.qcow2", "imageA.qcow2")]
    [InlineData("classified:imageB_sn1.qcow2", "imageB_sn1.qcow2")]
    [InlineData("written:imageA_sn0.qcow2", "imageA_sn0.qcow2")]
    [InlineData("written:imageC.qcow2", "imageC.qcow2")]
    [InlineData("hashing:imageB.qcow2", "imageB.qcow2")]
    [InlineData("committed:imageA.qcow2", "imageA.qcow2")]
    [InlineData("committed:imageC.qcow2", "imageC.qcow2")]
    public void A_failure_in_any_stage_of_linearize_is_one_error_naming_the_layer_and_leaves_nothing_behind(string step, string layer)
    {
        Qemu.Require();
        using var dir = new TempDir("pipeline-fail");
        string outDir = dir["out"];
        QcowException? error = null;
        var (steps, ends) = Hooked(
            s => { if (s == step) throw new InvalidOperationException("injected fault"); },
            () => error = Assert.Throws<QcowException>(() => LinearizeOperation.Run(new LinearizeRequest { TopImage = seed.Top, OutputFolder = outDir })));

        Assert.Contains(step, steps);
        Assert.Equal(layer, Path.GetFileName(error!.FilePath));
        Assert.Contains("injected fault", error.Message);
        Assert.IsNotType<AggregateException>(error.InnerException);
        Assert.DoesNotContain("chain-json", steps);
        Assert.False(File.Exists(Path.Combine(outDir, LinearizeOperation.ChainJsonName)));
        AssertNothingLeft(outDir, ends);
        // Layers appear bottom first and complete: what is in place is a prefix of the chain, each committed.
        var inPlace = Directory.EnumerateFiles(outDir).Select(f => Path.GetFileName(f)).ToHashSet();
        var committed = steps.Where(s => s.StartsWith("committed:", StringComparison.Ordinal)).Select(s => s["committed:".Length..]).ToList();
        Assert.Equal(committed.ToHashSet(), inPlace);
        Assert.Equal(SeedStates.All.Select(s => s.Layer).Take(committed.Count), committed);
    }

    [SkippableFact]
    public void A_successful_run_commits_bottom_first_and_returns_every_buffer_and_thread()
    {
        Qemu.Require();
        using var dir = new TempDir("pipeline-ok");
        LinearizeResult? result = null;
        var (steps, ends) = Hooked(_ => { }, () => result = LinearizeOperation.Run(new LinearizeRequest { TopImage = seed.Top, OutputFolder = dir["out"] }));

        var layers = SeedStates.All.Select(s => s.Layer).ToList();
        Assert.Equal(layers, steps.Where(s => s.StartsWith("committed:", StringComparison.Ordinal)).Select(s => s["committed:".Length..]));
        // Compared bottom first (the overlap of writes is shown by Outputs_above_the_bottom_are_written_while_the_bottom_still_is).
        Assert.Equal(layers.Select(l => "classified:" + l), steps.Where(s => s.StartsWith("classified:", StringComparison.Ordinal)));
        Assert.Equal("chain-json", steps[^1]);
        Assert.Equal(layers, result!.Layers.Select(l => l.Layer.FileName));
        AssertNothingLeft(dir["out"], ends);
    }

    [SkippableFact]
    public void Cancelling_mid_run_is_the_callers_cancellation_and_leaves_nothing_behind()
    {
        Qemu.Require();
        using var dir = new TempDir("pipeline-cancel");
        using var cancel = new CancellationTokenSource();
        var (steps, ends) = Hooked(
            s => { if (s == "written:imageB_sn0.qcow2") cancel.Cancel(); },
            () => Assert.ThrowsAny<OperationCanceledException>(() =>
                LinearizeOperation.Run(new LinearizeRequest { TopImage = seed.Top, OutputFolder = dir["out"] }, null, cancel.Token)));

        Assert.DoesNotContain("chain-json", steps);
        AssertNothingLeft(dir["out"], ends);
    }

    [SkippableTheory]
    [InlineData("classified:out.qcow2", false)]
    [InlineData("written:out.qcow2", false)]
    [InlineData("hashing:out.qcow2", false)]
    [InlineData("written:out.qcow2", true)]
    public void A_failure_in_any_stage_of_convert_is_one_error_naming_the_output(string step, bool toStream)
    {
        Qemu.Require();
        using var dir = new TempDir("pipeline-convert");
        string output = dir["out.qcow2"];
        using var sink = new MemoryStream();
        QcowException? error = null;
        var (steps, ends) = Hooked(
            s => { if (s == step) throw new InvalidOperationException("injected fault"); },
            () => error = Assert.Throws<QcowException>(() => ConvertOperation.Run(new ConvertRequest
            {
                Source = seed.Top,
                Output = output,
                OutputStream = toStream ? sink : null,
                ComputeSha256 = true,
            })));

        Assert.Contains(step, steps);
        Assert.Equal(output, error!.FilePath);
        Assert.Contains("injected fault", error.Message);
        Assert.False(File.Exists(output));
        AssertNothingLeft(dir.Path, ends);
    }

    [SkippableFact]
    public void A_stream_that_throws_anything_fails_the_export_not_the_process()
    {
        Qemu.Require();
        using var dir = new TempDir("pipeline-sink");
        var (_, ends) = Hooked(_ => { }, () =>
        {
            var error = Assert.Throws<QcowException>(() => ConvertOperation.Run(new ConvertRequest
            {
                Source = seed.Top,
                Output = "upload",
                // Something other than an I/O error, from the writer thread.
                OutputStream = new PipeOutputTests.AppendOnlyStream { FailAfter = 0, Failure = new InvalidOperationException("not today") },
            }));
            Assert.Equal("upload", error.FilePath);
            Assert.Contains("not today", error.Message);
        });
        AssertNothingLeft(dir.Path, ends);
    }

    [Fact]
    public void A_write_order_that_could_deadlock_the_bound_is_refused_before_anything_runs()
    {
        int n = OutputPipeline.MaxOutputsInFlight + 2;
        var outputs = Enumerable.Range(0, n).Select(i => new NothingOutput($"o{i}")).ToList();
        // The committer goes bottom first: outputs written above an unwritten bottom would hold every slot.
        Assert.Throws<ArgumentException>(() => OutputPipeline.Run(outputs, Enumerable.Range(0, n).Reverse().ToList(), default));
        Assert.Throws<ArgumentException>(() => OutputPipeline.Run(outputs, [0, 1, 1, .. Enumerable.Range(3, n - 3)], default));
        Assert.All(outputs, o => Assert.Equal(0, o.Calls));
        // The second layer first, then the bottom, is fine, and so is the highest order the bound allows.
        OutputPipeline.Run(outputs, [1, 0, .. Enumerable.Range(2, n - 2)], default);
        Assert.All(outputs, o => Assert.Equal(3, o.Calls));
        int[] highest = [.. Enumerable.Range(0, OutputPipeline.MaxOutputsInFlight).Reverse(), .. Enumerable.Range(OutputPipeline.MaxOutputsInFlight, 2)];
        OutputPipeline.Run(outputs, highest, default);
        Assert.All(outputs, o => Assert.Equal(6, o.Calls));
    }

    [Fact]
    public void Outputs_above_the_bottom_are_written_while_the_bottom_still_is()
    {
        // The bottom output's write (linearize writes bottom first) waits until the third output has been written: only
        // a second writer can do that.
        using var thirdWritten = new ManualResetEventSlim();
        bool bottomSawIt = false;
        var outputs = Enumerable.Range(0, 4).Select(i => new NothingOutput($"o{i}")).ToList();
        outputs[0].OnWrite = () => bottomSawIt = thirdWritten.Wait(TimeSpan.FromMinutes(1));
        outputs[2].OnWrite = thirdWritten.Set;

        OutputPipeline.Run(outputs, [0, 1, 2, 3], default);

        Assert.True(bottomSawIt);
        Assert.All(outputs, o => Assert.Equal(3, o.Calls));
    }

    /// <summary>An output that only counts its stages.</summary>
    private sealed class NothingOutput(string name) : PipelineOutput(name)
    {
        public int Calls;
        public Action? OnWrite;
        public override void Classify(CancellationToken cancel) => Calls++;
        public override bool Write(Qcow.Engine.Writing.ChunkPool pool, CancellationToken cancel) { Calls++; OnWrite?.Invoke(); return false; }
        public override void Commit() => Calls++;
        public override void Dispose() { }
    }
}
