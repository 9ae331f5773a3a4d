using Qcow.Engine.Operations;
using Qcow.Testing;

namespace Qcow.Engine.Tests;

/// <summary><c>convert -d</c>: the RFC's one-step diff export, checked against qemu-img's full exports.</summary>
public class ConvertDiffTests
{
    [SkippableFact]
    public void Diff_against_own_snapshot()
    {
        Qemu.Require();
        using var dir = new TempDir("d1");
        new ImageBuilder(dir, seed: 21).SeedChain("16M");
        string outDir = dir["export"];
        Directory.CreateDirectory(outDir);
        // qemu-img convert imageA.qcow2 -s sn0 export/imageA_sn0.qcow2; convert -d snapshot=sn0 -B imageA_sn0.qcow2
        var r = QcowProcess.Run("convert", "-s", "sn0", dir["imageA.qcow2"], Path.Combine(outDir, "imageA_sn0.qcow2"));
        Assert.True(r.ExitCode == 0, r.StdErr);
        r = QcowProcess.Run("convert", "-d", "snapshot=sn0", "-B", "imageA_sn0.qcow2", dir["imageA.qcow2"], Path.Combine(outDir, "imageA.qcow2"));
        Assert.True(r.ExitCode == 0, r.StdErr);
        Qemu.AssertClean(Path.Combine(outDir, "imageA.qcow2"));
        Qemu.AssertIdentical(dir["imageA.qcow2"], Path.Combine(outDir, "imageA.qcow2"));
        Assert.True(new FileInfo(Path.Combine(outDir, "imageA.qcow2")).Length < new FileInfo(Path.Combine(outDir, "imageA_sn0.qcow2")).Length);
    }

    [SkippableFact]
    public void Diff_against_another_image_and_snapshot_to_snapshot()
    {
        Qemu.Require();
        using var dir = new TempDir("d2");
        new ImageBuilder(dir, seed: 22).SeedChain("16M");
        string fullA = LinearizeTests.Export(dir, "imageA.qcow2", null);
        string fullBsn0 = LinearizeTests.Export(dir, "imageB.qcow2", "sn0");

        // B@sn0 as a diff against imageA's current state (base_image), backed by A's full export.
        string bSn0 = dir["b_sn0.qcow2"];
        ConvertOperation.Run(new ConvertRequest
        {
            Source = dir["imageB.qcow2"], SourceSnapshot = "sn0", Output = bSn0,
            Diff = new DiffBase(null, dir["imageA.qcow2"]), BackingFile = Path.GetFileName(fullA),
        });
        Qemu.AssertClean(bSn0);
        Qemu.AssertIdentical(fullBsn0, bSn0);

        // Snapshot to snapshot: B@sn1 against B@sn0.
        string bSn1 = dir["b_sn1.qcow2"];
        var stats = ConvertOperation.Run(new ConvertRequest
        {
            Source = dir["imageB.qcow2"], SourceSnapshot = "sn1", Output = bSn1,
            Diff = new DiffBase("sn0"), BackingFile = Path.GetFileName(fullBsn0),
        });
        Qemu.AssertClean(bSn1);
        Qemu.AssertIdentical(LinearizeTests.Export(dir, "imageB.qcow2", "sn1"), bSn1);
        Assert.True(stats.DataClusters + stats.ZeroClusters > 0);

        // base_image with a snapshot of it: C's current against B@sn1.
        string c = dir["c.qcow2"];
        ConvertOperation.Run(new ConvertRequest
        {
            Source = dir["imageC.qcow2"], Output = c,
            Diff = DiffBase.Parse($"base_image={dir["imageB.qcow2"]},snapshot=sn1"), BackingFile = Path.GetFileName(bSn1),
        });
        Qemu.AssertIdentical(dir["imageC.qcow2"], c);
    }

    [SkippableFact]
    public void Diff_against_a_base_of_another_size()
    {
        Qemu.Require();
        using var dir = new TempDir("d3");
        var b = new ImageBuilder(dir, seed: 23);
        string img = b.Create("img.qcow2", "16M");
        b.Scatter(img, 16 << 20, 8, 1 << 20);
        b.WriteRandom(img, (16 << 20) - 65536, 65536);
        b.Snapshot(img, "small");
        Qemu.Img("resize", "-q", img, "24M");
        b.WriteRandom(img, 18 << 20, 1 << 20);
        b.Scatter(img, 16 << 20, 4, 1 << 20);

        string small = dir["small.qcow2"];
        var smallStats = ConvertOperation.Run(new ConvertRequest { Source = img, SourceSnapshot = "small", Output = small });
        Assert.Equal(16L << 20, smallStats.VirtualSize);
        // The snapshot is exported at its own recorded size, not the image's current size.
        Assert.Contains("\"virtual-size\": 16777216", Qemu.Img("info", "--output=json", small).StdOut);

        string grown = dir["grown.qcow2"];
        ConvertOperation.Run(new ConvertRequest { Source = img, Output = grown, Diff = new DiffBase("small"), BackingFile = "small.qcow2" });
        Assert.Contains("\"virtual-size\": 25165824", Qemu.Img("info", "--output=json", grown).StdOut);
        Qemu.AssertClean(grown);
        Qemu.AssertIdentical(img, grown);

        // And the other way: a smaller state over a larger base.
        string shrunk = dir["shrunk.qcow2"];
        ConvertOperation.Run(new ConvertRequest { Source = img, SourceSnapshot = "small", Output = shrunk, Diff = new DiffBase(null), BackingFile = "grown.qcow2" });
        Qemu.AssertClean(shrunk);
        Qemu.AssertIdentical(small, shrunk);
    }

    [SkippableFact]
    public void Diff_needs_a_backing_file()
    {
        Qemu.Require();
        using var dir = new TempDir("d4");
        new ImageBuilder(dir, seed: 24).SeedChain("8M");
        var r = QcowProcess.Run("convert", "-d", "snapshot=sn0", dir["imageA.qcow2"], dir["x.qcow2"]);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("-B", r.StdErr);
        Assert.False(File.Exists(dir["x.qcow2"]));
    }
}
