using System.Text.Json.Nodes;
using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>
/// The pinned output hashes (tests/Qcow.Engine.Tests/PinnedHashes.json, see the engine's PinnedHashTests) hold
/// through an actual SDK build of the committed seed chain: the layers, chain.json and single exports that
/// <c>dotnet build</c> writes are byte for byte the pinned ones.
/// </summary>
public sealed class PinnedHashBuildTests : IDisposable
{
    private readonly TempDir _dir = new("pinned-build");

    public static TheoryData<string, string, string> Cases => new()
    {
        { "default", "", "" },
        { "cluster4k", "QcowClusterSize", "4k" },
        { "compat010", "QcowCompat", "0.10" },
        { "zlib", "QcowCompression", "zlib" },
        { "zstd", "QcowCompression", "zstd" },
        { "pattern", "QcowLayerNamePattern", "{snapshot}-{image}" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Layers_built_by_the_sdk_have_the_pinned_hashes(string name, string property, string value)
    {
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        CopySeed();
        var properties = property.Length == 0 ? null : new Dictionary<string, string> { [property] = value };
        var outcome = p.Build(properties: properties);
        Assert.True(outcome.Success, outcome.Log.Text);
        var actual = Directory.GetFiles(p.OutDir).ToDictionary(f => Path.GetFileName(f), FileHash.Sha256);
        Assert.Equal(Pinned($"linearize/{name}"), actual.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList());
    }

    [Fact]
    public void Snapshot_exports_built_by_the_sdk_have_the_pinned_hashes()
    {
        var p = new ImgProject(_dir.Path, """
            <ItemGroup>
              <QcowSnapshot Include="images/imageB.qcow2" Snapshot="sn1" OutputFile="$(OutDir)b.qcow2" />
              <QcowSnapshot Include="images/imageB.qcow2" Snapshot="sn1" OutputFormat="raw" OutputFile="$(OutDir)b.raw" />
            </ItemGroup>
            """);
        CopySeed();
        var outcome = p.Build();
        Assert.True(outcome.Success, outcome.Log.Text);
        Assert.Equal(Pinned("convert/qcow2").Single().Value, FileHash.Sha256(p.Out("b.qcow2")));
        Assert.Equal(Pinned("convert/raw").Single().Value, FileHash.Sha256(p.Out("b.raw")));
    }

    private void CopySeed()
    {
        Directory.CreateDirectory(_dir["images"]);
        foreach (var f in Directory.GetFiles(Path.Combine(Repo.Root, "samples", "seed", "images"), "*.qcow2"))
            File.Copy(f, Path.Combine(_dir["images"], Path.GetFileName(f)));
    }

    private static List<KeyValuePair<string, string>> Pinned(string key)
    {
        var all = JsonNode.Parse(File.ReadAllText(Path.Combine(Repo.Root, "tests", "Qcow.Engine.Tests", "PinnedHashes.json")))!;
        return all[key]!.AsObject().Select(kv => KeyValuePair.Create(kv.Key, (string)kv.Value!)).OrderBy(kv => kv.Key, StringComparer.Ordinal).ToList();
    }

    public void Dispose() => _dir.Dispose();
}
