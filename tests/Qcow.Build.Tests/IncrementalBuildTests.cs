using System.Text.Json;
using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>In-process builds of generated .imgproj projects (MSBuild API): outputs, incrementality, clean.</summary>
[Collection(SeedCollection.Name)]
public sealed class IncrementalBuildTests(SeedChain seed) : IDisposable
{
    private const string Chain = """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""";
    private static readonly string[] ALayers = ["imageA_sn0.qcow2", "imageA.qcow2"];
    private static readonly string[] BLayers = ["imageB_sn0.qcow2", "imageB_sn1.qcow2", "imageB.qcow2"];
    private static readonly string[] CLayers = ["imageC_sn0.qcow2", "imageC.qcow2"];

    private readonly TempDir _dir = new("build");

    private ImgProject Project(string body = Chain)
    {
        seed.CopyTo(_dir["images"]);
        return new ImgProject(_dir.Path, body);
    }

    private static void AssertBuilt(BuildOutcome b) => Assert.True(b.Success, b.Log.Text);

    [SkippableFact]
    public void Build_writes_every_layer_as_qemu_exports_it_plus_chain_json_and_returns_the_images()
    {
        var p = Project();
        var b = p.Build("Build;GetQcowImages");
        AssertBuilt(b);
        Assert.True(b.Ran("QcowLinearize"));
        seed.AssertLayersCorrect(p.OutDir);

        // chain.json: the layers bottom-up, each with its backing file and the hash of the file as written.
        using var json = JsonDocument.Parse(File.ReadAllText(p.Out("chain.json")));
        var layers = json.RootElement.GetProperty("layers").EnumerateArray().ToList();
        Assert.Equal(SeedStates.All.Select(l => l.Layer), layers.Select(l => l.GetProperty("file").GetString()));
        for (int i = 0; i < layers.Count; i++)
        {
            Assert.Equal(i == 0 ? null : SeedStates.All[i - 1].Layer, layers[i].GetProperty("backing").GetString());
            Assert.Equal(FileHash.Sha256(p.Out(SeedStates.All[i].Layer)), layers[i].GetProperty("sha256").GetString());
        }

        // The Returns target gives the same layers as items with metadata.
        var items = b.Items("GetQcowImages");
        Assert.Equal(SeedStates.All.Select(l => p.Out(l.Layer)), items.Select(i => i.ItemSpec));
        var top = items[^1];
        Assert.Equal("imageC_sn0.qcow2", top.GetMetadata("BackingFile"));
        Assert.Equal("", top.GetMetadata("Snapshot"));
        Assert.Equal((8L << 20).ToString(System.Globalization.CultureInfo.InvariantCulture), top.GetMetadata("VirtualSize"));
        Assert.Equal(FileHash.Sha256(p.Out("imageC.qcow2")), top.GetMetadata("Sha256"));
        Assert.Equal("sn1", items[3].GetMetadata("Snapshot"));
        Assert.Equal(_dir["images/imageB.qcow2"], items[3].GetMetadata("SourceImage"));

        // Progress and a summary per layer were logged.
        Assert.Contains(b.Log.Messages, m => m.Message!.Contains("imageB_sn1.qcow2: 100%", StringComparison.Ordinal));
        Assert.Contains(b.Log.Messages, m => m.Importance == Microsoft.Build.Framework.MessageImportance.High && m.Message!.Contains("imageB_sn1.qcow2 ->", StringComparison.Ordinal));
    }

    [SkippableFact]
    public void Second_build_skips_the_targets_rewrites_nothing_and_question_passes()
    {
        var p = Project();
        AssertBuilt(p.Build());
        var before = SeedChain.Times(p.OutDir);
        var stamps = SeedChain.Times(Directory.GetDirectories(Path.Combine(p.Folder, "obj", "Debug", "qcow")).Single());

        var again = p.Build();
        AssertBuilt(again);
        Assert.True(again.Skipped("QcowLinearize"), again.Log.Text);
        Assert.DoesNotContain(again.Log.Messages, m => m.Message!.StartsWith("Linearizing", StringComparison.Ordinal));
        Assert.Equal(before, SeedChain.Times(p.OutDir));
        Assert.Equal(stamps, SeedChain.Times(Directory.GetDirectories(Path.Combine(p.Folder, "obj", "Debug", "qcow")).Single()));

        var q = p.Build(question: true);
        Assert.True(q.Success, q.Log.Text);
        Assert.Equal(before, SeedChain.Times(p.OutDir));
    }

    [SkippableFact]
    public void Touching_imageC_rebuilds_only_imageC_layers_and_question_fails_until_built()
    {
        var p = Project();
        AssertBuilt(p.Build());
        var before = SeedChain.Times(p.OutDir);

        SeedChain.Touch(_dir["images/imageC.qcow2"]);
        var q = p.Build(question: true);
        Assert.False(q.Success);
        // -question names the stale outputs, not their stamps.
        Assert.Contains(q.Log.Errors, e => e.Code == "QCOW0006" && e.File == p.Out("imageC.qcow2"));
        Assert.DoesNotContain(q.Log.Errors, e => e.File.EndsWith(".stamp", StringComparison.Ordinal));
        Assert.Equal(before, SeedChain.Times(p.OutDir));

        var b = p.Build();
        AssertBuilt(b);
        var after = SeedChain.Times(p.OutDir);
        foreach (var f in ALayers.Concat(BLayers)) Assert.Equal(before[f], after[f]);
        foreach (var f in CLayers.Append("chain.json")) Assert.NotEqual(before[f], after[f]);
        seed.AssertLayersCorrect(p.OutDir, CLayers);
        Assert.True(p.Build(question: true).Success);

        // Touching imageB rebuilds imageB's and imageC's layers (imageC's depend on imageB), not imageA's.
        before = after;
        SeedChain.Touch(_dir["images/imageB.qcow2"]);
        AssertBuilt(p.Build());
        after = SeedChain.Times(p.OutDir);
        foreach (var f in ALayers) Assert.Equal(before[f], after[f]);
        foreach (var f in BLayers.Concat(CLayers)) Assert.NotEqual(before[f], after[f]);
        seed.AssertLayersCorrect(p.OutDir);
    }

    [SkippableFact]
    public void Changing_QcowClusterSize_rebuilds_every_layer_with_the_new_cluster_size()
    {
        var p = Project();
        AssertBuilt(p.Build());
        var before = SeedChain.Times(p.OutDir);

        var props = new Dictionary<string, string> { ["QcowClusterSize"] = "4096" };
        Assert.False(p.Build(properties: props, question: true).Success);
        var b = p.Build(properties: props);
        AssertBuilt(b);
        var after = SeedChain.Times(p.OutDir);
        foreach (var f in SeedStates.All.Select(l => l.Layer)) Assert.NotEqual(before[f], after[f]);
        foreach (var f in SeedStates.All.Select(l => l.Layer))
            Assert.Contains("\"cluster-size\": 4096", Qemu.Img("info", "--output=json", p.Out(f)).StdOut, StringComparison.Ordinal);
        seed.AssertLayersCorrect(p.OutDir);
        Assert.True(p.Build(properties: props).Skipped("QcowLinearize"));

        // Item metadata is an input too: compression on the item rebuilds.
        p.Write("""<ItemGroup><QcowChain Include="images/imageC.qcow2" Compression="zlib" /></ItemGroup>""");
        var c = p.Build(properties: props);
        AssertBuilt(c);
        Assert.True(c.Ran("QcowLinearize"));
        Assert.All(SeedStates.All, l => Assert.NotEqual(after[l.Layer], File.GetLastWriteTimeUtc(p.Out(l.Layer)).Ticks));
        seed.AssertLayersCorrect(p.OutDir);
    }

    [SkippableFact]
    public void A_deleted_layer_is_rebuilt_alone()
    {
        var p = Project();
        AssertBuilt(p.Build());
        var before = SeedChain.Times(p.OutDir);
        File.Delete(p.Out("imageB_sn1.qcow2"));

        Assert.False(p.Build(question: true).Success);
        AssertBuilt(p.Build());
        var after = SeedChain.Times(p.OutDir);
        Assert.True(File.Exists(p.Out("imageB_sn1.qcow2")));
        foreach (var f in SeedStates.All.Select(l => l.Layer).Where(f => f != "imageB_sn1.qcow2"))
            Assert.Equal(before[f], after[f]);
        seed.AssertLayersCorrect(p.OutDir, ["imageB_sn1.qcow2"]);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());

        // Rebuild (Clean;Build) writes everything again.
        AssertBuilt(p.Build("Rebuild"));
        var rebuilt = SeedChain.Times(p.OutDir);
        Assert.Equal(after.Keys.Order(), rebuilt.Keys.Order());
        Assert.All(after, t => Assert.NotEqual(t.Value, rebuilt[t.Key]));
        seed.AssertLayersCorrect(p.OutDir);
    }

    [SkippableFact]
    public void Outputs_of_removed_states_are_deleted_by_IncrementalClean_and_Clean_removes_everything()
    {
        var p = Project();
        AssertBuilt(p.Build());
        Assert.True(File.Exists(p.Out("imageB_sn1.qcow2")));

        // Only the sn0 snapshots: imageB_sn1 leaves the chain, imageB's layer is rebuilt on imageB_sn0.
        p.Write("""<ItemGroup><QcowChain Include="images/imageC.qcow2" Snapshots="sn0" /></ItemGroup>""");
        AssertBuilt(p.Build());
        Assert.False(File.Exists(p.Out("imageB_sn1.qcow2")), "IncrementalClean should delete the removed layer");
        Assert.Equal("imageB_sn0.qcow2", JsonDocument.Parse(File.ReadAllText(p.Out("chain.json"))).RootElement
            .GetProperty("layers").EnumerateArray().Single(l => l.GetProperty("file").GetString() == "imageB.qcow2").GetProperty("backing").GetString());
        Qemu.AssertIdentical(seed.Export("imageB.qcow2", null), p.Out("imageB.qcow2"));
        Qemu.AssertIdentical(seed.Export("imageC.qcow2", null), p.Out("imageC.qcow2"));

        var clean = p.Build("Clean");
        AssertBuilt(clean);
        Assert.Empty(Directory.EnumerateFiles(p.OutDir));
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(p.Folder, "obj", "Debug", "qcow"), "*", SearchOption.AllDirectories));
    }

    [SkippableFact]
    public void Stamps_written_by_a_killed_build_and_leftover_temporaries_never_pass_for_up_to_date_outputs()
    {
        var p = Project();
        AssertBuilt(p.Build());
        var before = SeedChain.Times(p.OutDir);

        // A build killed after resolving (stamps rewritten for the touched imageA) but before writing any layer,
        // that left a half-written temporary of one layer behind.
        SeedChain.Touch(_dir["images/imageA.qcow2"]);
        AssertBuilt(p.Build("QcowResolveChains"));
        string temp = p.Out(".imageA_sn0.qcow2.qcow-tmp-999999-0123456789abcdef");
        File.WriteAllBytes(temp, new byte[4096]);

        Assert.False(p.Build(question: true).Success);
        var b = p.Build();
        AssertBuilt(b);
        var after = SeedChain.Times(p.OutDir);
        foreach (var f in SeedStates.All.Select(l => l.Layer)) Assert.NotEqual(before[f], after[f]);
        seed.AssertLayersCorrect(p.OutDir);
        Assert.True(p.Build(question: true).Success);
    }
    [SkippableFact]
    public void With_QcowHashInputs_a_touch_alone_rebuilds_nothing_but_a_content_change_does()
    {
        var p = Project();
        var hash = new Dictionary<string, string> { ["QcowHashInputs"] = "true" };
        AssertBuilt(p.Build(properties: hash));
        var before = SeedChain.Times(p.OutDir);

        // A checkout or cache restore gives files new times, not new content.
        SeedChain.Touch(_dir["images/imageB.qcow2"]);
        var b = p.Build(properties: hash);
        AssertBuilt(b);
        Assert.True(b.Skipped("QcowLinearize"), b.Log.Text);
        Assert.Equal(before, SeedChain.Times(p.OutDir));

        // New content in imageC (a qemu-io write) rebuilds imageC's layers only.
        Qemu.Io(_dir["images/imageC.qcow2"], "write -q -P 0x5a 0 64k");
        AssertBuilt(p.Build(properties: hash));
        var after = SeedChain.Times(p.OutDir);
        foreach (var f in ALayers.Concat(BLayers)) Assert.Equal(before[f], after[f]);
        foreach (var f in CLayers) Assert.NotEqual(before[f], after[f]);
        Qemu.Img("convert", "-O", "qcow2", _dir["images/imageC.qcow2"], _dir["c-now.qcow2"]);
        Qemu.AssertIdentical(_dir["c-now.qcow2"], p.Out("imageC.qcow2"));
    }

    public void Dispose() => _dir.Dispose();
}
