using System.Net;
using System.Net.Sockets;
using Async = System.Threading.Tasks;
using Microsoft.Build.Utilities;
using Qcow.Build.Tasks;
using Qcow.Build.Tests.Support;
using Qcow.Testing;
using Qcow.Testing.Registry;

namespace Qcow.Build.Tests;

/// <summary>The tasks run directly: cancellation (ICancelableTask) mid-write leaves no output and no temporary.</summary>
public sealed class CancellationTests : IDisposable
{
    private readonly TempDir _dir = new("cancel");

    /// <summary>A 256 MiB image with 64 MiB of data: long enough to be cancelled mid-write.</summary>
    private string BigImage()
    {
        Qemu.Require();
        var b = new ImageBuilder(_dir, seed: 9);
        string img = b.Create("big.qcow2", "256M");
        for (int i = 0; i < 8; i++) b.WriteRandom(img, i * (32L << 20), 8L << 20);
        return img;
    }

    [SkippableFact]
    public void ConvertQcowSnapshot_cancelled_at_its_first_progress_report_stops_and_leaves_nothing()
    {
        string img = BigImage();
        var engine = new FakeBuildEngine(_dir["p.imgproj"]);
        var task = new ConvertQcowSnapshot { BuildEngine = engine, Source = new TaskItem(img), Output = _dir["out/big-export.qcow2"], ClusterSize = "4k" };
        // The engine looks at the token at least once per batch of clusters, and reports progress per batch: so a
        // cancel it honours shows as at most one more report (the batch that was in flight), whatever the machine's speed.
        int reportsAfterCancel = -1;
        engine.OnMessage = m =>
        {
            if (!m.Contains('%', StringComparison.Ordinal)) return;
            if (reportsAfterCancel < 0) task.Cancel();
            reportsAfterCancel++;
        };

        Assert.False(task.Execute());
        var e = Assert.Single(engine.Errors);
        Assert.Equal("QCOW0007", e.Code);
        Assert.Equal(_dir["out/big-export.qcow2"], e.File);
        Assert.True(reportsAfterCancel <= 1, $"{reportsAfterCancel} progress reports after the cancel");
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir["out"]));
    }

    [SkippableFact]
    public void LinearizeQcowChain_cancelled_mid_chain_leaves_only_complete_layers_and_no_chain_json()
    {
        string img = BigImage();
        Qemu.Img("snapshot", "-c", "s1", img);
        new ImageBuilder(_dir, seed: 10).WriteRandom(img, 100L << 20, 8L << 20);
        var engine = new FakeBuildEngine(_dir["p.imgproj"]);
        var chain = new TaskItem(img);
        chain.SetMetadata("OutputDir", _dir["layers"]);
        chain.SetMetadata("ClusterSize", "4096");
        var task = new LinearizeQcowChain { BuildEngine = engine, Chain = chain };
        // Cancel while the second layer (big.qcow2, after big_s1.qcow2) is being written.
        engine.OnMessage = m => { if (m.StartsWith("  big.qcow2: ", StringComparison.Ordinal)) task.Cancel(); };

        Assert.False(task.Execute());
        Assert.Equal("QCOW0007", Assert.Single(engine.Errors).Code);
        // No temporary, no chain.json, no big.qcow2; the first layer only if it was complete before the cancel.
        var left = Directory.EnumerateFileSystemEntries(_dir["layers"]).Select(Path.GetFileName).ToList();
        Assert.True(left.Count == 0 || left.SequenceEqual(["big_s1.qcow2"]), string.Join(", ", left));
        if (left.Count == 1) Qemu.AssertClean(_dir["layers/big_s1.qcow2"]);
    }

    [SkippableFact]
    public void ResolveQcowInputs_cancelled_stops_planning_and_hashing_and_writes_no_stamp()
    {
        string img = BigImage();
        var engine = new FakeBuildEngine(_dir["p.imgproj"]);
        var task = new ResolveQcowInputs
        {
            BuildEngine = engine, Chains = [new TaskItem(img)], ProjectDirectory = _dir.Path, StampDirectory = _dir["obj/qcow/"],
            DefaultOutputDir = _dir["out/"], HashInputs = true,
        };
        task.Cancel();

        Assert.False(task.Execute());
        Assert.Equal("QCOW0007", Assert.Single(engine.Errors).Code);
        Assert.False(Directory.Exists(_dir["obj"]));
        Assert.False(Directory.Exists(_dir["out"]));
    }

    [Fact]
    public async Async.Task PushQcowChain_cancelled_while_the_registry_keeps_it_waiting_stops_with_QCOW0007_naming_the_reference()
    {
        string chainJson = Path.Combine(Chains.Synthetic(_dir["chain"], seed: 3, 4096, 8192), "chain.json");
        // A "registry" that accepts the connection and never answers: only a cancel ends the push before its timeout.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            int port = ((IPEndPoint)listener.LocalEndpoint).Port;
            var engine = new FakeBuildEngine(_dir["p.imgproj"]);
            var chain = new TaskItem(chainJson);
            chain.SetMetadata("ChainJson", chainJson);
            var task = new PushQcowChain { BuildEngine = engine, ProjectName = "p", Registry = $"127.0.0.1:{port}", Repository = "vm", Tags = ["v1"], Chains = [chain] };
            var run = Async.Task.Run(task.Execute);

            // The bounds only keep a broken build from hanging the run; nothing here depends on timing.
            var accept = listener.AcceptTcpClientAsync();
            var first = await Async.Task.WhenAny(accept, run).WaitAsync(TimeSpan.FromMinutes(2));
            Assert.True(first == accept, "the push ended before it connected: " + string.Join("; ", engine.Errors.Select(e => e.Message)));
            using var connection = await accept;
            task.Cancel();

            Assert.False(await run.WaitAsync(TimeSpan.FromMinutes(2)));
            var error = Assert.Single(engine.Errors);
            Assert.Equal("QCOW0007", error.Code);
            Assert.Equal($"127.0.0.1:{port}/vm:v1", error.File);
        }
        finally
        {
            listener.Stop();
        }
    }

    public void Dispose() => _dir.Dispose();
}
