using System.Security.Cryptography;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Tests;

/// <summary>
/// The two ways an image is written give the same bytes: planned (classify first, header first, hashed while written)
/// and in one pass (header last, hashed by reading back); and the output buffer writes the same bytes with direct I/O
/// as through the page cache.
/// </summary>
public class PlannedWriteTests
{
    public static TheoryData<string> Options => new() { "", "cluster_size=512", "cluster_size=4k", "cluster_size=2M", "compat=0.10" };

    [SkippableTheory]
    [MemberData(nameof(Options))]
    public void Planned_and_one_pass_writes_give_the_same_bytes_and_hash(string options)
    {
        Qemu.Require();
        using var dir = new TempDir("planned");
        var b = new ImageBuilder(dir, seed: 77);
        string img = b.Create("img.qcow2", "24M");
        b.Scatter(img, 24 << 20, 14, 3 << 20);
        b.WritePattern(img, 5 << 20, 1 << 20, 0x5a);
        b.Snapshot(img, "s1");
        // After s1: new data, the same bytes written again (equal clusters), zeros as data and as zero flags.
        b.Scatter(img, 24 << 20, 10, 1 << 20);
        b.WritePattern(img, 5 << 20, 1 << 20, 0x5a);
        b.WritePattern(img, 9 << 20, 512 << 10, 0);
        b.WriteZeros(img, 12 << 20, 256 << 10);
        b.WriteRandom(img, (24 << 20) - 5000, 5000);
        var wo = WriteOptions.Default.With(options);

        foreach (var diff in new DiffBase?[] { null, new DiffBase("s1") })
        {
            string backing = dir["base.qcow2"];
            if (diff is not null)
                ConvertOperation.Run(new ConvertRequest { Source = img, SourceSnapshot = "s1", Output = backing, Options = wo });
            ConvertRequest Request(string output, bool hash) => new()
            {
                Source = img, Output = output, Options = wo, ComputeSha256 = hash,
                Diff = diff, BackingFile = diff is null ? null : backing,
            };
            string planned = dir["planned.qcow2"], onePass = dir["one-pass.qcow2"];
            var p = ConvertOperation.Run(Request(planned, hash: true));
            var o = ConvertOperation.Run(Request(onePass, hash: false));
            Assert.Equal(File.ReadAllBytes(onePass), File.ReadAllBytes(planned));
            Assert.Equal(FileHash.Sha256(planned), p.Sha256);
            Assert.Equal(o.DataClusters, p.DataClusters);
            Assert.Equal(o.ZeroClusters, p.ZeroClusters);
            // The planned first pass reads a page of a cluster first and the rest only when it must.
            Assert.True(p.BytesRead <= o.BytesRead, $"planned read {p.BytesRead}, one pass {o.BytesRead}");
            Qemu.AssertClean(planned);
            Qemu.AssertIdentical(img, planned);
        }
    }

    [SkippableFact]
    public void A_page_decides_only_what_it_can_and_the_rest_is_read_when_it_cannot()
    {
        Qemu.Require();
        using var dir = new TempDir("probe");
        var b = new ImageBuilder(dir, seed: 79);
        const int C = 64 << 10;
        string img = b.Create("img.qcow2", "2M");
        b.WriteRandom(img, 0, 6 * C);
        b.WritePattern(img, 3 * C, C, 0x5a);
        b.Snapshot(img, "s1");
        b.WriteRandom(img, 0 * C + C - 4096, 4096);        // same first page as below, differs at the end: data
        b.WritePattern(img, 1 * C, 4096, 0);               // first page zeros over data below, the rest differs: data
        b.WritePattern(img, 2 * C, C, 0);                  // zeros written as data over data below: a zero cluster
        b.WritePattern(img, 3 * C, C, 0x5a);               // the same bytes again, in another host cluster: same
        b.WriteRandom(img, 4 * C, 4096);                   // differs in the first page: data
        b.WritePattern(img, 10 * C + 8192, 4096, 0x77);    // nothing below; first page zeros, data later: data
        b.WritePattern(img, 11 * C, C, 0);                 // nothing below; zeros written as data: same as below
        b.WriteRandom(img, 12 * C, C);                     // nothing below; data
        string backing = dir["base.qcow2"];
        ConvertOperation.Run(new ConvertRequest { Source = img, SourceSnapshot = "s1", Output = backing });

        foreach (var diff in new DiffBase?[] { new DiffBase("s1"), null })
        {
            LayerStats Run(string output, bool hash) => ConvertOperation.Run(new ConvertRequest
            {
                Source = img, Output = output, ComputeSha256 = hash, Diff = diff, BackingFile = diff is null ? null : backing,
            });
            string planned = dir[$"planned-{diff is null}.qcow2"], onePass = dir[$"one-pass-{diff is null}.qcow2"];
            var p = Run(planned, hash: true);
            var o = Run(onePass, hash: false);
            Assert.Equal(File.ReadAllBytes(onePass), File.ReadAllBytes(planned));
            Assert.Equal(diff is null ? 7 : 5, p.DataClusters);
            Assert.Equal(diff is null ? 0 : 1, p.ZeroClusters);
            // Pages and clusters read, case by case (top and below): against s1, clusters 0 and 3 read whole on both
            // sides (first pages equal), 1 and 2 a page below and the whole top (top page zeros), 4 a page each, 10
            // and 11 whole (zero first page) and 12 a page. Alone: 1, 2, 10 and 11 whole, six clusters a page.
            Assert.Equal(diff is null ? (4 * 64 + 5 * 4) << 10 : (2 * 128 + 2 * 68 + 8 + 2 * 64 + 4) << 10, p.BytesRead);
            Qemu.AssertClean(planned);
            Qemu.AssertIdentical(img, planned);
        }
    }

    [SkippableFact]
    public void A_diff_too_scattered_to_keep_is_not_planned()
    {
        Qemu.Require();
        using var dir = new TempDir("overflow");
        var b = new ImageBuilder(dir, seed: 78);
        string img = b.Create("img.qcow2", "8M");
        for (int i = 0; i < 6; i++) b.WriteRandom(img, i * (1L << 20), 4096);
        using var set = new ImageSet();
        var view = set.View(img);
        var zero = new ZeroView(view.Size);
        var all = DiffWriter.Classify(view, zero, WriteOptions.Default, "img", null, default);
        Assert.NotNull(all);
        Assert.Equal(6, all.DataClusters);
        Assert.Equal(6, all.Runs.Count);
        Assert.Equal(1, all.L2Tables);
        Assert.Null(DiffWriter.Classify(view, zero, WriteOptions.Default, "img", null, default, maxRuns: 5));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Output_buffer_writes_the_same_bytes_with_and_without_direct_io(bool hash)
    {
        using var dir = new TempDir("seqout");
        var rng = new Random(9);
        // Several chunks and a tail that is not a whole block; writes of every shape.
        var expected = new byte[2 * SequentialOutput.ChunkSize + 3 * 4096 + 1234];
        rng.NextBytes(expected);
        expected.AsSpan(100_000, 70_000).Clear();
        var hashes = new List<string?>();
        foreach (bool direct in new[] { true, false })
        {
            string path = dir[$"out-{direct}"];
            using (var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite))
            using (var output = new SequentialOutput(file, path, hash, direct))
            {
                int at = 0;
                output.Write(expected.AsSpan(0, 100_000));
                output.WriteZeros(70_000);
                at = 170_000;
                while (at < expected.Length)
                {
                    int n = Math.Min(rng.Next(1, 3 << 20), expected.Length - at);
                    if (rng.Next(2) == 0)
                    {
                        output.Write(expected.AsSpan(at, n));
                    }
                    else
                    {
                        var span = output.GetSpanUpTo(n);
                        Assert.True(span.Length >= 1);
                        expected.AsSpan(at, span.Length).CopyTo(span);
                        output.Advance(span.Length);
                        n = span.Length;
                    }
                    at += n;
                    Assert.Equal(at, output.Position);
                }
                if (!hash)
                {
                    // Without hashing the head stays in memory until the end, so it can be patched last.
                    expected.AsSpan(0, 64).Fill(0xee);
                    output.PatchHead(expected.AsSpan(0, 64));
                }
                else
                {
                    Assert.Throws<InvalidOperationException>(() => output.PatchHead(new byte[8]));
                }
                hashes.Add(output.Complete());
            }
            Assert.Equal(expected, File.ReadAllBytes(path));
        }
        Assert.Equal(hashes[0], hashes[1]);
        Assert.Equal(hash ? Convert.ToHexStringLower(SHA256.HashData(expected)) : null, hashes[0]);
    }
}
