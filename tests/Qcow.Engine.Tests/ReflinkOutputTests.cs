using Qcow.Engine.Operations;
using Qcow.Engine.Tests.Infrastructure;

namespace Qcow.Engine.Tests;

/// <summary>
/// Outputs do not depend on the file system they are written to: linearize and convert on loop-mounted XFS (reflink=1)
/// and btrfs give, byte for byte and hash for hash, what they give in a plain folder, from a chain that mixes
/// snapshots, backing files and compressed clusters; every output is clean for qemu-img check.
/// </summary>
public class ReflinkOutputTests
{
    [SkippableTheory]
    [InlineData("xfs")]
    [InlineData("btrfs")]
    public void Outputs_are_the_bytes_written_in_a_plain_folder(string kind)
    {
        Qemu.Require();
        using var plain = new TempDir("reflink-plain");
        var builder = new ImageBuilder(plain, seed: 41);
        string top = builder.SeedChain("16M");
        // Compressed clusters cannot be cloned: they are written as on any file system.
        builder.WriteRandom(top, 5 << 20, 192 << 10, compressed: true);
        string[] sources = ["imageA.qcow2", "imageB.qcow2", "imageC.qcow2"];

        using var fs = LoopFileSystem.Create(kind);
        Directory.CreateDirectory(fs["src"]);
        foreach (var s in sources) File.Copy(plain[s], Path.Combine(fs["src"], s));

        var expected = Outputs(plain.Path, plain.Path);
        var actual = Outputs(fs["src"], fs.Path);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, path) in expected)
        {
            Assert.True(File.ReadAllBytes(path).AsSpan().SequenceEqual(File.ReadAllBytes(actual[name])), $"{name} on {kind} differs from the plain folder's");
            if (name.EndsWith(".qcow2", StringComparison.Ordinal)) Qemu.AssertClean(actual[name]);
        }
        // The sources are untouched.
        foreach (var s in sources) Assert.Equal(WriterTests.Sha(plain[s]), WriterTests.Sha(Path.Combine(fs["src"], s)));
    }

    /// <summary>Linearizes the chain in <paramref name="src"/> and exports states of it, into <paramref name="outRoot"/>; name -> path.</summary>
    private static Dictionary<string, string> Outputs(string src, string outRoot)
    {
        string outDir = Path.Combine(outRoot, "out");
        var result = Linearizer.Run(new LinearizeRequest { TopImage = Path.Combine(src, "imageC.qcow2"), OutputFolder = outDir });
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var layer in result.Layers)
        {
            Assert.Equal(WriterTests.Sha(layer.Path), layer.Sha256);
            files[layer.Layer.FileName] = layer.Path;
        }
        files[Linearizer.ChainJsonName] = result.ChainJsonPath;

        foreach (var (name, snapshot, format) in new[] { ("export-A-sn0.qcow2", "sn0", "qcow2"), ("export-C.qcow2", null, "qcow2"), ("export-C.raw", null, "raw") })
        {
            string image = snapshot is null ? "imageC.qcow2" : "imageA.qcow2";
            string output = Path.Combine(outDir, name);
            var stats = ConvertOperation.Run(new ConvertRequest
            {
                Source = Path.Combine(src, image), SourceSnapshot = snapshot, Output = output, OutputFormat = format, ComputeSha256 = true,
            });
            Assert.Equal(WriterTests.Sha(output), stats.Sha256);
            files[name] = output;
        }
        return files;
    }
}
