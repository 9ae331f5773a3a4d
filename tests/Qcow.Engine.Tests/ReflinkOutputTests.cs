using Qcow.Engine.Operations;
using Qcow.Engine.Writing;
using Qcow.Testing;

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
        // (A pattern: qemu stores random data uncompressed, as it does not shrink.)
        Qemu.Io(top, "write -q -c -P 0x5a 5M 192k");
        string[] sources = ["imageA.qcow2", "imageB.qcow2", "imageC.qcow2"];

        using var fs = LoopFileSystem.Create(kind);
        Directory.CreateDirectory(fs["src"]);
        foreach (var s in sources) File.Copy(plain[s], Path.Combine(fs["src"], s));

        var expected = Outputs(plain.Path, plain.Path, out _);
        var actual = Outputs(fs["src"], fs.Path, out var dataBytes);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, path) in expected)
        {
            Assert.True(File.ReadAllBytes(path).AsSpan().SequenceEqual(File.ReadAllBytes(actual[name])), $"{name} on {kind} differs from the plain folder's");
            if (name.EndsWith(".qcow2", StringComparison.Ordinal)) Qemu.AssertClean(actual[name]);
        }
        // The data clusters taken unchanged from the sources share their extents: all but the compressed ones (the
        // three written above, in imageC's current state).
        foreach (var (name, data) in dataBytes)
        {
            long shared = LoopFileSystem.SharedBytes(actual[name]);
            long expectedShared = name == "imageC.qcow2" || name == "export-C.qcow2" ? data - (192 << 10) : data;
            Assert.True(data > 0, $"{name}: no data clusters");
            Assert.True(shared == expectedShared, $"{name} on {kind}: {shared} bytes shared with the sources, {expectedShared} expected");
        }
        // The sources are untouched.
        foreach (var s in sources) Assert.Equal(FileHash.Sha256(plain[s]), FileHash.Sha256(Path.Combine(fs["src"], s)));
    }

    [SkippableFact]
    public void An_unhashed_export_where_cloning_is_refused_holds_every_byte()
    {
        Qemu.Require();
        // An unhashed export leaves the clusters it may clone unread; on ext4 every clone is refused and they must be
        // read then, in every chunk of the output (several here), not only in the one that found cloning refused.
        using var fs = LoopFileSystem.Create("ext4");
        using var dir = new TempDir("reflink-refused");
        string built = new ImageBuilder(dir, seed: 43).Create("image.qcow2", "64M");
        // 24 MiB of data in pieces of different patterns, a hole between each, then overwritten after the snapshot.
        for (int i = 0; i < 12; i++) Qemu.Io(built, $"write -q -P {0x11 + i} {i * 4}M 2M");
        Qemu.Img("snapshot", "-c", "sn0", built);
        Qemu.Io(built, "write -q -P 0x77 0 8M");
        string source = fs["image.qcow2"];
        File.Copy(built, source);
        string hashed = fs["hashed.qcow2"], unhashed = fs["unhashed.qcow2"];
        foreach (var (output, hash) in new[] { (hashed, true), (unhashed, false) })
            ConvertOperation.Run(new ConvertRequest { Source = source, SourceSnapshot = "sn0", Output = output, OutputFormat = "qcow2", ComputeSha256 = hash });
        Assert.True(new FileInfo(unhashed).Length > 4 * SequentialOutput.ChunkSize, "the export should span several chunks");
        Assert.True(File.ReadAllBytes(hashed).AsSpan().SequenceEqual(File.ReadAllBytes(unhashed)), "the unhashed export differs from the hashed one");
        Qemu.AssertClean(unhashed);
    }

    /// <summary>Linearizes the chain in <paramref name="src"/> and exports states of it, into <paramref name="outRoot"/>; name -> path.</summary>
    private static Dictionary<string, string> Outputs(string src, string outRoot, out Dictionary<string, long> dataBytes)
    {
        dataBytes = new(StringComparer.Ordinal);
        string outDir = Path.Combine(outRoot, "out");
        var result = LinearizeOperation.Run(new LinearizeRequest { TopImage = Path.Combine(src, "imageC.qcow2"), OutputFolder = outDir });
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var layer in result.Layers)
        {
            Assert.Equal(FileHash.Sha256(layer.Path), layer.Sha256);
            files[layer.Layer.FileName] = layer.Path;
            dataBytes[layer.Layer.FileName] = layer.Stats!.DataClusters * 65536L;
        }
        files[LinearizeOperation.ChainJsonName] = result.ChainJsonPath;

        // Hashed exports are planned (two passes), unhashed ones written in one pass: both may clone.
        foreach (var (name, snapshot, format, hash) in new[]
                 {
                     ("export-A-sn0.qcow2", "sn0", "qcow2", true), ("export-A-sn0-unhashed.qcow2", "sn0", "qcow2", false),
                     ("export-C.qcow2", null, "qcow2", true), ("export-C.raw", null, "raw", true),
                 })
        {
            string image = snapshot is null ? "imageC.qcow2" : "imageA.qcow2";
            string output = Path.Combine(outDir, name);
            var stats = ConvertOperation.Run(new ConvertRequest
            {
                Source = Path.Combine(src, image), SourceSnapshot = snapshot, Output = output, OutputFormat = format, ComputeSha256 = hash,
            });
            if (hash) Assert.Equal(FileHash.Sha256(output), stats.Sha256);
            files[name] = output;
            if (format == "qcow2") dataBytes[name] = stats.DataClusters * 65536L;
        }
        return files;
    }
}
