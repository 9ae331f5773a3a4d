using Qcow.Engine.Format;
using Qcow.Engine.Operations;
using Qcow.Testing;

namespace Qcow.Engine.Tests;

/// <summary>
/// Differential tests against qemu-img: images of every shape qemu-img makes (cluster sizes, compat levels,
/// compression, extended L2, refcount widths, overlays on qcow2 and raw, snapshots before a resize) are read by the
/// engine, and every state we export must be identical to qemu-img's export and pass qemu-img check.
/// </summary>
public class FormatMatrixTests
{
    public static TheoryData<string> Shapes => new()
    {
        "cluster512", "cluster4k", "cluster64k", "cluster2m", "compat010", "zlib", "zstd", "extendedl2",
        "refcount1", "refcount64", "overlay-qcow2", "overlay-raw", "resize", "datafile", "datafile-raw",
    };

    /// <summary>Builds the image for <paramref name="shape"/>; returns the path of the image to read.</summary>
    internal static string Build(ImageBuilder b, string shape)
    {
        const string size = "24M";
        long bytes = Sizes.Parse(size);
        switch (shape)
        {
            case "cluster512": return WithSnapshots(b, b.Create("img.qcow2", size, "cluster_size=512"), bytes);
            case "cluster4k": return WithSnapshots(b, b.Create("img.qcow2", size, "cluster_size=4096"), bytes);
            case "cluster64k": return WithSnapshots(b, b.Create("img.qcow2", size), bytes);
            case "cluster2m": return WithSnapshots(b, b.Create("img.qcow2", size, "cluster_size=2M"), bytes);
            case "compat010": return WithSnapshots(b, b.Create("img.qcow2", size, "compat=0.10"), bytes);
            case "extendedl2": return WithSnapshots(b, b.Create("img.qcow2", size, "extended_l2=on,cluster_size=64k"), bytes);
            case "datafile":
            case "datafile-raw":
            {
                // qemu cannot snapshot images with an external data file; the data lives in data.raw.
                // qemu-img create takes the data file name relative to its working folder: give it in full.
                string data = b.Dir["data.raw"];
                string opts = shape == "datafile" ? $"data_file={data}" : $"data_file={data},data_file_raw=on";
                string img = b.Create("img.qcow2", size, opts);
                b.Scatter(img, bytes, 10, 1 << 20);
                return img;
            }
            case "refcount1":
            {
                // One-bit refcounts cannot share clusters, so qemu refuses snapshots: use an overlay instead.
                string base1 = b.Create("base.qcow2", size, "refcount_bits=1");
                b.Scatter(base1, bytes, 8, 1 << 20);
                string top = b.Create("img.qcow2", size, "refcount_bits=1", backing: "base.qcow2");
                b.Scatter(top, bytes, 8, 1 << 20);
                return top;
            }
            case "refcount64": return WithSnapshots(b, b.Create("img.qcow2", size, "refcount_bits=64"), bytes);
            case "zlib":
            case "zstd":
            {
                string plain = b.Create("plain.qcow2", size);
                b.Scatter(plain, bytes, 10, 1 << 20);
                string img = b.Dir["img.qcow2"];
                Qemu.Img("convert", "-c", "-O", "qcow2", "-o", shape == "zstd" ? "compression_type=zstd" : "compression_type=zlib", plain, img);
                b.Snapshot(img, "s1");
                b.WriteRandom(img, 2 << 20, 1 << 20, compressed: true);
                b.Scatter(img, bytes, 4, 256 << 10);
                return img;
            }
            case "overlay-qcow2":
            {
                string base1 = WithSnapshots(b, b.Create("base.qcow2", size), bytes);
                string top = b.Create("img.qcow2", size, backing: "base.qcow2");
                return WithSnapshots(b, top, bytes);
            }
            case "overlay-raw":
            {
                string raw = b.Dir["base.raw"];
                Qemu.Img("create", "-q", "-f", "raw", raw, "20M");
                b.Scatter(raw, 20 << 20, 6, 1 << 20);
                string top = b.Create("img.qcow2", size, backing: "base.raw", backingFormat: "raw");
                return WithSnapshots(b, top, bytes);
            }
            case "resize":
            {
                string img = b.Create("img.qcow2", "16M");
                b.Scatter(img, 16 << 20, 6, 1 << 20);
                b.Snapshot(img, "small");
                Qemu.Img("resize", "-q", img, "24M");
                b.Scatter(img, bytes, 6, 1 << 20);
                b.WriteRandom(img, 20 << 20, 1 << 20);
                return img;
            }
            default: throw new ArgumentException(shape);
        }
    }

    private static string WithSnapshots(ImageBuilder b, string image, long bytes)
    {
        b.Scatter(image, bytes, 8, 1 << 20);
        b.Snapshot(image, "s1");
        b.Scatter(image, bytes, 6, 1 << 20);
        b.Snapshot(image, "s2");
        b.Scatter(image, bytes, 6, 512 << 10);
        return image;
    }

    [SkippableTheory]
    [MemberData(nameof(Shapes))]
    public void Every_state_exports_identically_to_qemu_img(string shape)
    {
        Qemu.Require();
        using var dir = new TempDir(shape);
        var b = new ImageBuilder(dir, seed: shape.GetHashCode(StringComparison.Ordinal) & 0x7fff ^ 1234);
        string image = Build(b, shape);
        using var opened = QcowImage.Open(image);
        var states = opened.Snapshots.Select(s => s.Name).Append(null).ToList();
        Assert.True(states.Count >= 2 || shape is "refcount1" or "datafile" or "datafile-raw", "fixture should have snapshots");
        foreach (var state in states)
        {
            string ours = dir[$"ours-{state ?? "current"}.qcow2"];
            string theirs = dir[$"ref-{state ?? "current"}.qcow2"];
            ConvertOperation.Run(new ConvertRequest { Source = image, SourceSnapshot = state, Output = ours });
            Qemu.Export(image, state, theirs);
            Qemu.AssertClean(ours);
            Qemu.AssertIdentical(theirs, ours);
            // Our compare agrees with qemu-img's.
            Assert.True(CompareOperation.Run(new CompareRequest { Image1 = theirs, Image2 = ours }).Identical, $"qcow compare says {state} differs");
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Shapes))]
    public void Map_agrees_with_qemu_img(string shape)
    {
        Qemu.Require();
        using var dir = new TempDir(shape);
        var b = new ImageBuilder(dir, seed: 99);
        string image = Build(b, shape);
        string expected = Qemu.Img("map", "--output=json", image).StdOut;
        var r = QcowProcess.Run("map", "--output=json", image);
        Assert.Equal(0, r.ExitCode);
        Assert.True(expected == r.StdOut, $"qemu-img map:\n{expected}\nqcow map:\n{r.StdOut}");
    }

    [SkippableTheory]
    [MemberData(nameof(Shapes))]
    public void Check_finds_qemu_made_images_clean(string shape)
    {
        Qemu.Require();
        using var dir = new TempDir(shape);
        var b = new ImageBuilder(dir, seed: 7);
        string image = Build(b, shape);
        var result = CheckOperation.Run(new CheckRequest { Image = image });
        Assert.True(result.ExitCode == 0, string.Join("\n", result.Messages.Take(20)));
        // The CLI prints qemu-img check's summary byte for byte, in both formats: the allocated, fragmented and
        // compressed counts included.
        foreach (string[] args in new[] { new[] { "check", "--output=json", image }, ["check", image] })
        {
            string expected = Qemu.Img(args).StdOut;
            var r = QcowProcess.Run(args);
            Assert.Equal(0, r.ExitCode);
            Assert.True(expected == r.StdOut, $"qemu-img {string.Join(' ', args)}:\n{expected}\nqcow:\n{r.StdOut}");
        }
    }
}
