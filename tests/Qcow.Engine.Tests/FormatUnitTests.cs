using Qcow.Engine.Format;
using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Tests;

/// <summary>Format code on images the engine writes itself: no qemu-img needed.</summary>
public class FormatUnitTests
{
    private static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Writes an image with the writer directly: cluster 0 data, cluster 2 zero, cluster 5 compressed.</summary>
    private static string WriteSample(TempDir dir, WriteOptions options, string? backing = null)
    {
        string path = dir["sample.qcow2"];
        int cs = options.ClusterSize;
        using var writer = new QcowWriter(OutputFile.Create(path), 8L * cs + 512, options, backing, backing is null ? null : "qcow2");
        writer.AddData(0, Pattern(cs, 1));
        writer.AddZero(2);
        var compressible = new byte[cs];
        for (int i = 0; i < cs; i++) compressible[i] = (byte)(i / 97);
        var stream = new byte[cs * 2];
        int n = Compression.ClusterCompression.Compress(options.Codec, compressible, stream);
        Assert.True(n > 0);
        writer.AddCompressed(5, stream.AsSpan(0, n));
        writer.AddData(8, Pattern(100, 2));
        writer.Commit(false);
        return path;
    }

    [Theory]
    [InlineData(512, 3, Format.CompressionType.Deflate)]
    [InlineData(65536, 3, Format.CompressionType.Zstd)]
    [InlineData(4096, 2, Format.CompressionType.Deflate)]
    [InlineData(2 << 20, 3, Format.CompressionType.Deflate)]
    public void Header_entries_and_data_round_trip(int clusterSize, int version, Format.CompressionType type)
    {
        using var dir = new TempDir("unit");
        var options = new WriteOptions { ClusterSize = clusterSize, Version = version, CompressionType = type };
        string path = WriteSample(dir, options);
        using var image = QcowImage.Open(path);
        var h = image.Header;
        Assert.Equal(version, h.Version);
        Assert.Equal(clusterSize, h.ClusterSize);
        Assert.Equal(8L * clusterSize + 512, (long)h.Size);
        Assert.Equal(4, h.RefcountOrder);
        Assert.Equal(type, h.CompressionType);
        Assert.Equal(ClusterKind.Normal, image.Lookup(image.ActiveL1, 0).Kind);
        Assert.Equal(ClusterKind.Unallocated, image.Lookup(image.ActiveL1, 1).Kind);
        Assert.Equal(version == 3 ? ClusterKind.Zero : ClusterKind.Normal, image.Lookup(image.ActiveL1, 2).Kind);
        Assert.Equal(ClusterKind.Compressed, image.Lookup(image.ActiveL1, 5).Kind);

        var view = new QcowView(image, null, null, 0);
        var buf = new byte[clusterSize];
        view.Read(0, buf);
        Assert.Equal(Pattern(clusterSize, 1), buf);
        view.Read(5L * clusterSize, buf);
        for (int i = 0; i < clusterSize; i++) Assert.Equal((byte)(i / 97), buf[i]);
        var tail = new byte[100];
        view.Read(8L * clusterSize, tail);
        Assert.Equal(Pattern(100, 2), tail);

        // Our own check recounts every reference and agrees with what we stored.
        var check = CheckOperation.Run(new CheckRequest { Image = path });
        Assert.True(check.ExitCode == 0, string.Join("\n", check.Messages));
        Assert.Equal(version == 3 ? 3 : 4, check.AllocatedClusters);
        Assert.Equal(1, check.CompressedClusters);
    }

    [Fact]
    public void Refcounts_cover_themselves_and_every_cluster()
    {
        using var dir = new TempDir("rc");
        string path = WriteSample(dir, new WriteOptions { ClusterSize = 512 });
        using var image = QcowImage.Open(path);
        var refcounts = new RefcountTable(image);
        long clusters = image.File.Length / 512;
        for (long c = 0; c < clusters; c++) Assert.True(refcounts.Get(c) >= 1, $"cluster {c} has no refcount");
        Assert.Equal(0UL, refcounts.Get(clusters + 10));
    }

    [Theory]
    [InlineData(9)]
    [InlineData(16)]
    [InlineData(21)]
    public void Compressed_descriptor_round_trips(int clusterBits)
    {
        foreach (var (offset, length) in new[] { (4096UL, 100L), (4097UL, 511L), (1_000_000_001UL, (1L << clusterBits) - 1), (511UL, 2L) })
        {
            ulong word = CompressedDescriptor.Encode(offset, length, clusterBits);
            var d = CompressedDescriptor.Decode(word, clusterBits);
            Assert.Equal(offset, d.HostOffset);
            Assert.True(d.Length >= length, "descriptor must cover the stream");
            Assert.True(d.Length < length + 512, "descriptor covers at most the sectors the stream touches");
        }
    }

    [Fact]
    public void Extended_l2_entries_follow_qemus_validity_rules()
    {
        Assert.Null(new L2Entry(0x10000 | L2Entry.CopiedFlag, 0x0000_0000_ffff_ffffUL, true).Problem(3, 65536));
        Assert.Equal(ClusterKind.Normal, new L2Entry(0x10000, 0x0000_0000_ffff_ffffUL, true).Kind);
        Assert.Equal(ClusterKind.Mixed, new L2Entry(0x10000, 0x0000_0001_0000_0002UL, true).Kind);
        Assert.Contains("both allocated and zero", new L2Entry(0x10000, 0x0000_0001_0000_0001UL, true).Problem(3, 65536));
        Assert.Contains("unallocated cluster", new L2Entry(0, 0x1UL, true).Problem(3, 65536));
        // qemu reads through a bitmap on a compressed cluster and reserved bits (qemu-img check counts them).
        Assert.Null(new L2Entry(L2Entry.CompressedFlag | 0x200, 0x1UL, true).Problem(3, 65536));
        Assert.Null(new L2Entry(0x10000 | 0x100, 0, false).Problem(3, 65536));
        Assert.Contains("not cluster-aligned", new L2Entry(0x10200, 0, false).Problem(3, 65536));
        Assert.Contains("version 2", new L2Entry(1, 0, false).Problem(2, 65536));
    }

    [Fact]
    public void Snapshots_are_found_by_qemus_rules()
    {
        var list = new[]
        {
            new Snapshot { Id = "1", Name = "2" },
            new Snapshot { Id = "2", Name = "base" },
        };
        Assert.Equal("1", SnapshotSelector.Find(list, "1", "x").Id);
        Assert.Equal("2", SnapshotSelector.Find(list, "2", "x").Id);          // a bare value is an id first
        Assert.Equal("1", SnapshotSelector.Find(list, "snapshot.name=2", "x").Id);
        Assert.Equal("2", SnapshotSelector.Find(list, "base", "x").Id);
        var e = Assert.Throws<QcowException>(() => SnapshotSelector.Find(list, "nope", "img.qcow2"));
        Assert.Contains("base (id 2)", e.Message);
        Assert.Contains("img.qcow2", e.Message);
    }

    [Fact]
    public void Write_options_parse_like_qemu_img()
    {
        var o = WriteOptions.Default.With("cluster_size=4k,compat=0.10");
        Assert.Equal(4096, o.ClusterSize);
        Assert.Equal(2, o.Version);
        Assert.Equal(2 << 20, WriteOptions.Default.With("cluster_size=2M").ClusterSize);
        Assert.Equal(Format.CompressionType.Zstd, WriteOptions.Default.With("compression_type=zstd").CompressionType);
        Assert.Contains("cluster_size", Assert.Throws<QcowException>(() => WriteOptions.Default.With("cluster_size=3000")).Message);
        Assert.Contains("compat", Assert.Throws<QcowException>(() => WriteOptions.Default.With("compat=2")).Message);
        Assert.Contains("zstd", Assert.Throws<QcowException>(() => WriteOptions.Default.With("compat=0.10,compression_type=zstd")).Message);
        Assert.Contains("unknown option", Assert.Throws<QcowException>(() => WriteOptions.Default.With("preallocation=full")).Message);
    }

    [Theory]
    [InlineData("{image}_{snapshot}", "sn0", "imageA_sn0.qcow2")]
    [InlineData("{image}_{snapshot}", null, "imageA.qcow2")]
    [InlineData("{snapshot}-{image}", null, "imageA.qcow2")]
    [InlineData("{image}.{snapshot}.qcow2", "s1", "imageA.s1.qcow2")]
    [InlineData("v1-{image}-{snapshot}", null, "v1-imageA.qcow2")]
    public void Layer_names_follow_the_pattern(string pattern, string? snapshot, string expected) =>
        Assert.Equal(expected, ChainPlanner.LayerName(pattern, "imageA", snapshot, "imageA.qcow2"));

    [Theory]
    [InlineData("{snapshot}")]
    [InlineData("{image}")]
    [InlineData("../{image}_{snapshot}")]
    public void Layer_name_patterns_that_clash_or_escape_are_refused(string pattern) =>
        Assert.Throws<QcowException>(() => ChainPlanner.LayerName(pattern, "imageA", "sn0", "imageA.qcow2"));

    [SkippableFact]
    public void Opened_files_report_the_real_path_the_kernel_opened()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "uses /proc/self/fd");
        using var dir = new TempDir("real");
        Directory.CreateDirectory(dir["elsewhere"]);
        File.WriteAllBytes(dir["elsewhere/target.bin"], [1, 2, 3]);
        File.CreateSymbolicLink(dir["link.bin"], dir["elsewhere/target.bin"]);
        using var f = IO.ImageFile.Open(dir["link.bin"]);
        Assert.Equal(dir["elsewhere/target.bin"], f.OpenedRealPath);
    }

    [Fact]
    public void Diff_base_parses_rfc_syntax()
    {
        Assert.Equal(new DiffBase("sn0", null), DiffBase.Parse("snapshot=sn0"));
        Assert.Equal(new DiffBase("sn1", "b.qcow2"), DiffBase.Parse("base_image=b.qcow2,snapshot=sn1"));
        Assert.Throws<QcowException>(() => DiffBase.Parse("what=ever"));
    }

    [Fact]
    public void Overlay_falls_through_to_backing_and_zeros_past_its_end()
    {
        using var dir = new TempDir("ov");
        int cs = 4096;
        string basePath = dir["base.qcow2"];
        using (var w = new QcowWriter(OutputFile.Create(basePath), 2L * cs, new WriteOptions { ClusterSize = cs }))
        {
            w.AddData(0, Pattern(cs, 5));
            w.AddData(1, Pattern(cs, 6));
            w.Commit(false);
        }
        string top = dir["top.qcow2"];
        using (var w = new QcowWriter(OutputFile.Create(top), 4L * cs, new WriteOptions { ClusterSize = cs }, "base.qcow2", "qcow2"))
        {
            w.AddZero(1);
            w.Commit(false);
        }
        using var set = new Chain.ImageSet();
        var view = set.View(top);
        var buf = new byte[4 * cs];
        view.Read(0, buf);
        Assert.Equal(Pattern(cs, 5), buf[..cs]);
        Assert.All(buf[cs..], b => Assert.Equal(0, b));
        Assert.Equal(ExtentKind.Data, view.GetExtent(0, cs).Kind);
        Assert.Equal(1, view.GetExtent(0, cs).Depth);
        Assert.Equal(ExtentKind.Zero, view.GetExtent(cs, cs).Kind);
        Assert.Equal(ExtentKind.Unallocated, view.GetExtent(2L * cs, cs).Kind);
    }
}
