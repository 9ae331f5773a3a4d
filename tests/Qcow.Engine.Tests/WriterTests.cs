using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Tests;

/// <summary>Every write option gives images qemu-img finds clean and identical to the source; output is deterministic.</summary>
public class WriterTests
{
    public static TheoryData<string, bool> Options => new()
    {
        { "", false },
        { "cluster_size=512", false },
        { "cluster_size=4k", false },
        { "cluster_size=2M", false },
        { "compat=0.10", false },
        { "compression_type=zlib", true },
        { "compression_type=zstd", true },
        { "compat=0.10,cluster_size=4k", true },
    };

    [SkippableTheory]
    [MemberData(nameof(Options))]
    public void Written_images_are_clean_and_identical(string options, bool compress)
    {
        Qemu.Require();
        using var dir = new TempDir("write");
        var b = new ImageBuilder(dir, seed: 42);
        string src = b.Create("src.qcow2", "20M");
        b.Scatter(src, 20 << 20, 12, 1 << 20);
        b.WriteRandom(src, (20 << 20) - 3000, 3000);
        var wo = WriteOptions.Default.With(options) with { Compress = compress };
        string outPath = dir["out.qcow2"];
        ConvertOperation.Run(new ConvertRequest { Source = src, Output = outPath, Options = wo });
        Qemu.AssertClean(outPath);
        Qemu.AssertIdentical(src, outPath);
        var ours = CheckOperation.Run(new CheckRequest { Image = outPath });
        Assert.True(ours.ExitCode == 0, string.Join("\n", ours.Messages));
        var info = Qemu.Img("info", "--output=json", outPath).StdOut;
        Assert.Contains($"\"cluster-size\": {wo.ClusterSize}", info);
        Assert.Contains(wo.Version == 2 ? "\"compat\": \"0.10\"" : "\"compat\": \"1.1\"", info);
        if (compress)
            Assert.True(ours.CompressedClusters > 0, "expected compressed clusters");
    }

    [SkippableFact]
    public void Raw_output_matches()
    {
        Qemu.Require();
        using var dir = new TempDir("raw");
        var b = new ImageBuilder(dir, seed: 5);
        string src = b.Create("src.qcow2", "8M");
        b.Scatter(src, 8 << 20, 6, 1 << 20);
        string raw = dir["out.raw"];
        ConvertOperation.Run(new ConvertRequest { Source = src, Output = raw, OutputFormat = "raw" });
        Assert.Equal(8 << 20, new FileInfo(raw).Length);
        Assert.Equal(0, Qemu.ImgAllow([0, 1], "compare", "-f", "qcow2", "-F", "raw", src, raw).ExitCode);
    }

    [SkippableFact]
    public void Same_input_gives_same_bytes_in_any_folder()
    {
        Qemu.Require();
        using var dir = new TempDir("det");
        var b = new ImageBuilder(dir, seed: 11);
        string top = b.SeedChain("16M");
        foreach (var (options, compress) in new[] { ("", false), ("compression_type=zstd", true), ("compression_type=zlib", true), ("compat=0.10", false) })
        {
            var wo = WriteOptions.Default.With(options) with { Compress = compress };
            string a = Path.Combine(dir["one"], "deep", "x.qcow2");
            string c = Path.Combine(dir["two"], "y.qcow2");
            ConvertOperation.Run(new ConvertRequest { Source = top, SourceSnapshot = "sn0", Output = a, Options = wo });
            ConvertOperation.Run(new ConvertRequest { Source = top, SourceSnapshot = "sn0", Output = c, Options = wo });
            Assert.Equal(FileHash.Sha256(a), FileHash.Sha256(c));
        }
    }

    [SkippableFact]
    public void Diff_with_backing_writes_relative_name_and_clean_image()
    {
        Qemu.Require();
        using var dir = new TempDir("bk");
        var b = new ImageBuilder(dir, seed: 3);
        string img = b.Create("img.qcow2", "8M");
        b.Scatter(img, 8 << 20, 6, 1 << 20);
        b.Snapshot(img, "s1");
        b.Scatter(img, 8 << 20, 6, 1 << 20);
        string outDir = dir["export"];
        string baseOut = Path.Combine(outDir, "img_s1.qcow2");
        string topOut = Path.Combine(outDir, "img.qcow2");
        ConvertOperation.Run(new ConvertRequest { Source = img, SourceSnapshot = "s1", Output = baseOut });
        ConvertOperation.Run(new ConvertRequest { Source = img, Output = topOut, Diff = new DiffBase("s1"), BackingFile = "img_s1.qcow2" });
        var info = Qemu.Img("info", "--output=json", topOut).StdOut;
        Assert.Contains("\"backing-filename\": \"img_s1.qcow2\"", info);
        Assert.Contains("\"backing-filename-format\": \"qcow2\"", info);
        Qemu.AssertClean(topOut);
        Qemu.AssertIdentical(img, topOut);
        // An absolute -B is stored relative to the output's folder.
        string abs = Path.Combine(outDir, "abs.qcow2");
        ConvertOperation.Run(new ConvertRequest { Source = img, Output = abs, Diff = new DiffBase("s1"), BackingFile = baseOut });
        Assert.Contains("\"backing-filename\": \"img_s1.qcow2\"", Qemu.Img("info", "--output=json", abs).StdOut);

        // The export folder can move.
        string moved = dir["moved"];
        Directory.Move(outDir, moved);
        Qemu.AssertIdentical(img, Path.Combine(moved, "img.qcow2"));
    }

    [SkippableFact]
    public void Output_that_is_an_input_is_refused_and_source_untouched()
    {
        Qemu.Require();
        using var dir = new TempDir("self");
        var b = new ImageBuilder(dir, seed: 8);
        string top = b.SeedChain("8M");
        var before = Directory.GetFiles(dir.Path).ToDictionary(f => f, FileHash.Sha256);
        var e = Assert.Throws<QcowException>(() => ConvertOperation.Run(new ConvertRequest { Source = top, Output = dir["imageA.qcow2"] }));
        Assert.Contains("imageA.qcow2", e.Message);
        Assert.Contains("never modified", e.Message);
        foreach (var (f, h) in before) Assert.Equal(h, FileHash.Sha256(f));
        Assert.Empty(Directory.GetFiles(dir.Path, ".*qcow-tmp*"));
    }
}
