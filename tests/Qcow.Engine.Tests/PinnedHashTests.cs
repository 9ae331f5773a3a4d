using System.Text.Json;
using System.Text.Json.Nodes;
using Qcow.Engine.IO;
using FileHash = Qcow.Testing.FileHash;
using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Tests;

/// <summary>
/// The output format, pinned: the committed seed chain (samples/seed/images) linearized as the SDK does, and one
/// snapshot of it exported with <c>qcow convert</c>, must give the SHA-256 values in PinnedHashes.json on any machine,
/// in any folder, on any day, with the Linux-only system calls used or not. An intended change of the output format
/// updates that file in the same commit (run with QCOW_UPDATE_PINNED_HASHES=1 to rewrite it) and adds a line to the
/// README's changelog of output formats.
/// </summary>
public class PinnedHashTests
{
    private static readonly string RepoRoot = FindRepoRoot();
    private static string SeedImages => Path.Combine(RepoRoot, "samples", "seed", "images");
    private static string PinnedFile => Path.Combine(RepoRoot, "tests", "Qcow.Engine.Tests", "PinnedHashes.json");
    private static readonly Lock s_update = new();

    public static TheoryData<string> LinearizeCases => ["default", "cluster4k", "compat010", "zlib", "zstd", "pattern"];

    private static (WriteOptions Options, string? Pattern) Case(string name) => name switch
    {
        "default" => (WriteOptions.Default, null),
        "cluster4k" => (WriteOptions.Default.With("cluster_size=4k"), null),
        "compat010" => (WriteOptions.Default.With("compat=0.10"), null),
        "zlib" => (WriteOptions.Default.With("compression_type=zlib") with { Compress = true }, null),
        "zstd" => (WriteOptions.Default.With("compression_type=zstd") with { Compress = true }, null),
        "pattern" => (WriteOptions.Default, "{snapshot}-{image}"),
        _ => throw new ArgumentException(name),
    };

    [SkippableFact]
    public void The_seed_images_are_the_pinned_ones()
    {
        // The outputs below are pinned for these inputs: regenerating them (samples/seed/make-images.sh) moves the pins.
        var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(SeedImages, "*.qcow2")) hashes[Path.GetFileName(f)] = FileHash.Sha256(f);
        AssertPinned("inputs", hashes);
    }

    [SkippableTheory]
    [MemberData(nameof(LinearizeCases))]
    public void Linearized_seed_chain_has_the_pinned_hashes(string name)
    {
        using var dir = new TempDir("pinned");
        var (options, pattern) = Case(name);
        var hashes = Linearize(Path.Combine(dir.Path, "a", "deep", "out"), options, pattern);
        using (HostPlatform.WithoutLinuxCalls())
            Assert.Equal(hashes, Linearize(Path.Combine(dir.Path, "b"), options, pattern));
        AssertPinned($"linearize/{name}", hashes);
    }

    [SkippableTheory]
    [MemberData(nameof(LinearizeCases))]
    public void Pinned_layers_are_clean_and_read_as_their_sources(string name)
    {
        Qemu.Require();
        using var dir = new TempDir("pinned-qemu");
        var (options, pattern) = Case(name);
        string outDir = dir["out"];
        var result = LinearizeOperation.Run(new LinearizeRequest
        {
            TopImage = Path.Combine(SeedImages, "imageC.qcow2"), OutputFolder = outDir, Options = options, NamePattern = pattern,
        });
        foreach (var layer in result.Layers)
        {
            Qemu.AssertClean(layer.Path);
            string state = dir[$"state-{Path.GetFileName(layer.Path)}.raw"];
            Qemu.Export(layer.Layer.SourceImage, layer.Layer.Snapshot, state, "raw");
            Assert.Equal(0, Qemu.ImgAllow([0, 1], "compare", "-f", "raw", "-F", "qcow2", state, layer.Path).ExitCode);
        }
    }

    [SkippableTheory]
    [InlineData("raw")]
    [InlineData("qcow2")]
    public void Converted_snapshot_has_the_pinned_hash(string format)
    {
        using var dir = new TempDir("pinned-convert");
        string source = Path.Combine(SeedImages, "imageB.qcow2");
        // As a user runs it: the CLI, then the same export in-process without the Linux-only calls.
        string viaCli = dir[$"cli.{format}"];
        var r = QcowProcess.Run("convert", "-O", format, "-s", "sn1", source, viaCli);
        Assert.True(r.ExitCode == 0, r.StdErr);
        string portable = dir[$"portable.{format}"];
        using (HostPlatform.WithoutLinuxCalls())
            ConvertOperation.Run(new ConvertRequest { Source = source, SourceSnapshot = "sn1", Output = portable, OutputFormat = format });
        var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal) { [$"imageB_sn1.{format}"] = FileHash.Sha256(viaCli) };
        Assert.Equal(hashes.Values.Single(), FileHash.Sha256(portable));
        AssertPinned($"convert/{format}", hashes);
    }

    /// <summary>Linearizes the seed chain into <paramref name="outDir"/>; the SHA-256 of every file written, by name.</summary>
    private static SortedDictionary<string, string> Linearize(string outDir, WriteOptions options, string? pattern)
    {
        var result = LinearizeOperation.Run(new LinearizeRequest
        {
            TopImage = Path.Combine(SeedImages, "imageC.qcow2"), OutputFolder = outDir, Options = options, NamePattern = pattern,
        });
        var hashes = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var f in Directory.GetFiles(outDir)) hashes[Path.GetFileName(f)] = FileHash.Sha256(f);
        Assert.Equal(8, hashes.Count); // seven layers and chain.json, nothing else (no temporaries)
        foreach (var layer in result.Layers) Assert.Equal(hashes[Path.GetFileName(layer.Path)], layer.Sha256);
        return hashes;
    }

    private static void AssertPinned(string key, SortedDictionary<string, string> actual)
    {
        if (Environment.GetEnvironmentVariable("QCOW_UPDATE_PINNED_HASHES") == "1")
        {
            lock (s_update)
            {
                var all = JsonNode.Parse(File.ReadAllText(PinnedFile))!.AsObject();
                var entry = new JsonObject();
                foreach (var (file, sha) in actual) entry[file] = sha;
                all[key] = entry;
                var sorted = new JsonObject();
                foreach (var k in all.Select(p => p.Key).Order(StringComparer.Ordinal).ToList())
                {
                    var v = all[k]!;
                    all.Remove(k);
                    sorted[k] = v;
                }
                File.WriteAllText(PinnedFile, sorted.ToJsonString(new JsonSerializerOptions { WriteIndented = true }).Replace("\r\n", "\n") + "\n");
            }
            Skip.If(true, $"QCOW_UPDATE_PINNED_HASHES=1: wrote {key} into {PinnedFile}");
        }
        var pinned = JsonNode.Parse(File.ReadAllText(PinnedFile))![key]?.AsObject();
        Assert.True(pinned is not null, $"{key} is not pinned in {PinnedFile}");
        var expected = new SortedDictionary<string, string>(pinned.ToDictionary(p => p.Key, p => (string)p.Value!), StringComparer.Ordinal);
        Assert.True(expected.SequenceEqual(actual),
            $"{key}: output bytes differ from the pinned ones. If the output format changed on purpose, update {PinnedFile} " +
            $"(QCOW_UPDATE_PINNED_HASHES=1) and the README's changelog of output formats. Now:\n" +
            string.Join("\n", actual.Select(p => $"  {p.Key}: {p.Value}{(expected.GetValueOrDefault(p.Key) == p.Value ? "" : "   <- differs")}")));
    }

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Qcow.Build.Sdk.sln"))) return d.FullName;
        throw new InvalidOperationException($"no Qcow.Build.Sdk.sln above {AppContext.BaseDirectory}");
    }
}
