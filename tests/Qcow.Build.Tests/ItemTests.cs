using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>In-process builds: QcowSnapshot exports, ProjectReference consumers, diagnostics.</summary>
[Collection(SeedCollection.Name)]
public sealed class ItemTests(SeedChain seed) : IDisposable
{
    private readonly TempDir _dir = new("items");

    private static void AssertBuilt(BuildOutcome b) => Assert.True(b.Success, b.Log.Text);

    /// <summary>Asserts the build failed with exactly one error, of <paramref name="code"/>, naming <paramref name="file"/>, saying <paramref name="text"/>.</summary>
    private static void AssertOneError(BuildOutcome b, string code, string file, string text)
    {
        Assert.False(b.Success);
        var e = Assert.Single(b.Log.Errors);
        Assert.Equal(code, e.Code);
        Assert.Equal(file, e.File);
        Assert.Contains(text, e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void QcowSnapshot_exports_a_state_and_a_diff_against_a_base_snapshot()
    {
        seed.CopyTo(_dir["images"]);
        var p = new ImgProject(_dir.Path, """
            <ItemGroup>
              <QcowSnapshot Include="images/imageB.qcow2" Snapshot="sn0" OutputFile="exports/b-sn0.qcow2" />
              <QcowSnapshot Include="images/imageB.qcow2" Snapshot="sn1" DiffBaseSnapshot="sn0" BackingFile="b-sn0.qcow2" OutputFile="exports/b-sn1-diff.qcow2" ClusterSize="4k" />
              <QcowSnapshot Include="images/imageC.qcow2" />
            </ItemGroup>
            """);
        var b = p.Build("Build;GetQcowImages");
        AssertBuilt(b);
        string full = _dir["exports/b-sn0.qcow2"], diff = _dir["exports/b-sn1-diff.qcow2"];
        Qemu.AssertIdentical(seed.Export("imageB.qcow2", "sn0"), full);
        Qemu.AssertIdentical(seed.Export("imageB.qcow2", "sn1"), diff);
        Qemu.AssertIdentical(seed.Export("imageC.qcow2", null), p.Out("imageC.qcow2"));
        string info = Qemu.Img("info", "--output=json", diff).StdOut;
        Assert.Contains("\"backing-filename\": \"b-sn0.qcow2\"", info, StringComparison.Ordinal);
        Assert.Contains("\"cluster-size\": 4096", info, StringComparison.Ordinal);
        Assert.True(new FileInfo(diff).Length < new FileInfo(full).Length);
        Assert.Equal(3, b.Items("GetQcowImages").Length);

        var times = new[] { full, diff, p.Out("imageC.qcow2") }.Select(f => File.GetLastWriteTimeUtc(f)).ToList();
        var again = p.Build();
        Assert.True(again.Skipped("QcowConvert"), again.Log.Text);
        Assert.Equal(times, new[] { full, diff, p.Out("imageC.qcow2") }.Select(f => File.GetLastWriteTimeUtc(f)));

        // Touching imageA (below every source) re-exports all three.
        SeedChain.Touch(_dir["images/imageA.qcow2"]);
        AssertBuilt(p.Build());
        Assert.All(new[] { full, diff, p.Out("imageC.qcow2") }.Zip(times), t => Assert.NotEqual(t.Second, File.GetLastWriteTimeUtc(t.First)));
    }

    [SkippableFact]
    public void QcowSnapshot_of_a_layer_of_the_same_project_is_exported_after_the_layer_is_written()
    {
        seed.CopyTo(_dir["images"]);
        var p = new ImgProject(_dir.Path, """
            <ItemGroup>
              <QcowChain Include="images/imageC.qcow2" />
              <QcowSnapshot Include="$(OutDir)imageC.qcow2" OutputFile="$(OutDir)flat/imageC-flat.qcow2" />
            </ItemGroup>
            """);
        string flat = Path.Combine(p.OutDir, "flat", "imageC-flat.qcow2");
        var b = p.Build("Build;GetQcowImages");
        AssertBuilt(b);
        Qemu.AssertIdentical(seed.Export("imageC.qcow2", null), flat);
        Assert.Equal(8, b.Items("GetQcowImages").Length);

        // The top image changes: its layer is rewritten first, then the export of that layer, in the same build.
        Qemu.Io(_dir["images/imageC.qcow2"], "write -P 0x61 0 64k");
        AssertBuilt(p.Build());
        Qemu.AssertIdentical(_dir["images/imageC.qcow2"], flat);
        var again = p.Build();
        Assert.True(again.Skipped("QcowConvert") && again.Skipped("QcowLinearize"), again.Log.Text);
    }

    [SkippableFact]
    public void QcowSnapshot_takes_the_snapshot_of_its_source_image_only()
    {
        seed.CopyTo(_dir["images"]);
        // sn1 is a snapshot of imageB, below imageC: exporting imageC "at sn1" is not a state of imageC.
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowSnapshot Include="images/imageC.qcow2" Snapshot="sn1" /></ItemGroup>""");
        AssertOneError(p.Build(), "QCOW0002", _dir["images/imageC.qcow2"], "sn1");
        Assert.False(Directory.Exists(p.OutDir) && Directory.EnumerateFiles(p.OutDir, "*.qcow2").Any());
    }

    [SkippableFact]
    public void QcowSnapshot_takes_any_snapshot_name_and_images_of_the_same_file_stem()
    {
        // imageC on base/imageC.qcow2 (the seed chain): a chain with two images named imageC, and a snapshot named with a slash.
        seed.CopyTo(_dir["images/base"]);
        string top = _dir["images/imageC.qcow2"];
        Qemu.Img("create", "-q", "-f", "qcow2", "-b", "base/imageC.qcow2", "-F", "qcow2", top);
        Qemu.Io(top, "write -q -P 0x5a 64k 64k");
        Qemu.Img("snapshot", "-c", "release/1.0", top);
        Qemu.Io(top, "write -q -P 0x33 0 4k");
        var p = new ImgProject(_dir.Path, """
            <ItemGroup>
              <QcowSnapshot Include="images/imageC.qcow2" Snapshot="release/1.0" OutputFile="exports/release.qcow2" />
              <QcowSnapshot Include="images/imageC.qcow2" OutputFile="exports/current.qcow2" />
            </ItemGroup>
            """);
        AssertBuilt(p.Build());
        string release = _dir["exports/release.qcow2"];
        Assert.True(Qemu.Identical(Qemu.Export(top, "release/1.0", _dir["qemu-release.qcow2"]), release));
        Assert.True(Qemu.Identical(top, _dir["exports/current.qcow2"]));
        Qemu.AssertClean(release);

        // Without OutputFile the snapshot name goes into the file name, and a slash cannot: QCOW0004, nothing written.
        p.Write("""<ItemGroup><QcowSnapshot Include="images/imageC.qcow2" Snapshot="release/1.0" /></ItemGroup>""");
        AssertOneError(p.Build(), "QCOW0004", p.Path, "OutputFile");
        Assert.False(Directory.Exists(Path.Combine(p.OutDir, "imageC_release")));
    }

    [SkippableFact]
    public void A_project_consumes_another_imgproj_images_through_ProjectReference()
    {
        seed.CopyTo(_dir["producer/images"]);
        var producer = new ImgProject(_dir["producer"], """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""", "producer.imgproj");
        Directory.CreateDirectory(_dir["consumer"]);
        var consumer = new ImgProject(_dir["consumer"], """
            <ItemGroup>
              <ProjectReference Include="../producer/producer.imgproj" />
            </ItemGroup>
            <!-- Flatten the producer's top layer into one standalone image (clearing the layer's Snapshot and BackingFile metadata, which QcowSnapshot would take as its own). -->
            <Target Name="FlattenTop" BeforeTargets="QcowResolveSnapshots" DependsOnTargets="QcowResolveReferencedImages">
              <ItemGroup>
                <QcowSnapshot Include="@(QcowReferencedImage)" Condition="'%(QcowReferencedImage.LayerName)' == 'imageC.qcow2'" OutputFile="$(OutDir)flat.qcow2" Snapshot="" BackingFile="" />
              </ItemGroup>
            </Target>
            """, "consumer.imgproj");
        producer.Build("Restore");
        var b = consumer.Build();
        AssertBuilt(b);
        Assert.True(File.Exists(producer.Out("chain.json")));
        string flat = consumer.Out("flat.qcow2");
        Qemu.AssertIdentical(seed.Export("imageC.qcow2", null), flat);
        Assert.DoesNotContain("backing-filename", Qemu.Img("info", "--output=json", flat).StdOut, StringComparison.Ordinal);

        var again = consumer.Build();
        AssertBuilt(again);
        Assert.True(again.Skipped("QcowConvert"), again.Log.Text);
    }

    [Fact]
    public void A_missing_source_image_is_error_QCOW0001_naming_it()
    {
        var p = new ImgProject(_dir.Path, """
            <ItemGroup>
              <QcowChain Include="images/missing.qcow2" />
              <QcowSnapshot Include="images/gone.qcow2" />
            </ItemGroup>
            """);
        var b = p.Build();
        Assert.False(b.Success);
        // Chains and snapshots are resolved in one call: each missing source is one error naming it.
        Assert.Equal([_dir["images/missing.qcow2"], _dir["images/gone.qcow2"]], b.Log.Errors.Where(e => e.Code == "QCOW0001").Select(e => e.File));
        Assert.Contains(_dir["images/missing.qcow2"], b.Log.Errors[0].Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(p.OutDir) && Directory.EnumerateFiles(p.OutDir).Any());
    }

    [Fact]
    public void An_invalid_option_is_error_QCOW0004_naming_the_project()
    {
        File.WriteAllBytes(_dir["top.qcow2"], []);
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="top.qcow2" /></ItemGroup>""");
        AssertOneError(p.Build(properties: new Dictionary<string, string> { ["QcowClusterSize"] = "3000" }), "QCOW0004", p.Path, "cluster_size");
        AssertOneError(p.Build(properties: new Dictionary<string, string> { ["QcowCompression"] = "lz4" }), "QCOW0004", p.Path, "lz4");
    }

    private const string Sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("""{ "format": "qcow-chain/1", "layers": [ { "file": 7 } ] }""", "layers[0].file")]
    // Another format version is refused, not read as if it were this one.
    [InlineData("""{ "format": "qcow-chain/2", "layers": [ { "file": "a.qcow2", "sha256": "__SHA__" } ] }""", "format: is 'qcow-chain/2'")]
    [InlineData("""{ "layers": [ { "file": "a.qcow2", "sha256": "__SHA__" } ] }""", "format: is missing")]
    [InlineData("""{ "format": "qcow-chain/1", "layers": [ { "file": "../a.qcow2", "sha256": "__SHA__" } ] }""", "layers[0].file")]
    public void An_unreadable_chain_json_is_error_QCOW0009_naming_it_and_the_field(string json, string field)
    {
        string manifest = _dir["layers/chain.json"];
        Directory.CreateDirectory(_dir["layers"]);
        File.WriteAllText(manifest, json.Replace("__SHA__", Sha, StringComparison.Ordinal));
        var (task, engine) = ReadManifest(manifest);
        Assert.False(task.Execute());
        var e = Assert.Single(engine.Errors);
        Assert.Equal("QCOW0009", e.Code);
        Assert.Equal(manifest, e.File);
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
        Assert.Empty(task.Layers);
    }

    [Fact]
    public void A_chain_json_is_read_into_one_item_per_layer_with_full_source_paths()
    {
        string manifest = _dir["layers/chain.json"];
        Directory.CreateDirectory(_dir["layers"]);
        File.WriteAllText(manifest, $$"""
            { "format": "qcow-chain/1", "layers": [
              { "file": "a_sn0.qcow2", "backing": null, "sourceImage": "a.qcow2", "snapshot": "sn0", "virtualSize": 1048576, "sha256": "{{Sha}}" },
              { "file": "a.qcow2", "backing": "a_sn0.qcow2", "sourceImage": "a.qcow2", "snapshot": null, "virtualSize": 2097152, "sha256": "{{Sha}}" } ] }
            """);
        var (task, engine) = ReadManifest(manifest, chain: _dir["images/a.qcow2"]);
        Assert.True(task.Execute(), string.Join("\n", engine.Errors.Select(e => e.Message)));
        Assert.Equal([_dir["layers/a_sn0.qcow2"], _dir["layers/a.qcow2"]], task.Layers.Select(l => l.ItemSpec));
        var top = task.Layers[1];
        Assert.Equal("a_sn0.qcow2", top.GetMetadata("BackingFile"));
        Assert.Equal(_dir["images/a.qcow2"], top.GetMetadata("SourceImage"));
        Assert.Equal("", top.GetMetadata("Snapshot"));
        Assert.Equal("sn0", task.Layers[0].GetMetadata("Snapshot"));
        Assert.Equal("2097152", top.GetMetadata("VirtualSize"));
        Assert.Equal(Sha, top.GetMetadata("Sha256"));
        Assert.Equal(manifest, top.GetMetadata("ChainJson"));
    }

    private (Qcow.Build.Tasks.ReadQcowChainManifest Task, FakeBuildEngine Engine) ReadManifest(string manifest, string? chain = null)
    {
        var engine = new FakeBuildEngine(_dir["p.imgproj"]);
        var item = new Microsoft.Build.Utilities.TaskItem(manifest);
        if (chain is not null) item.SetMetadata("Chain", chain);
        return (new Qcow.Build.Tasks.ReadQcowChainManifest { BuildEngine = engine, Manifests = [item] }, engine);
    }

    [SkippableFact]
    public void A_stamp_that_cannot_be_written_is_error_QCOW0008_naming_it()
    {
        seed.CopyTo(_dir["images"]);
        // The stamp folder lies under a regular file, so the stamp cannot be created.
        File.WriteAllText(_dir["blocker"], "not a folder");
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        var b = p.Build(properties: new Dictionary<string, string> { ["QcowStampDir"] = _dir["blocker/stamps/"] });
        Assert.False(b.Success);
        var e = Assert.Single(b.Log.Errors);
        Assert.Equal("QCOW0008", e.Code);
        Assert.StartsWith(_dir["blocker/stamps"], e.File, StringComparison.Ordinal);
        Assert.EndsWith(".stamp", e.File, StringComparison.Ordinal);
        Assert.False(Directory.Exists(p.OutDir) && Directory.EnumerateFiles(p.OutDir).Any());
    }

    [SkippableFact]
    public void A_missing_backing_file_is_error_QCOW0002_naming_the_image_and_the_file()
    {
        seed.CopyTo(_dir["images"]);
        File.Delete(_dir["images/imageA.qcow2"]);
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        AssertOneError(p.Build(), "QCOW0002", _dir["images/imageB.qcow2"], "imageA.qcow2");
    }

    [SkippableFact]
    public void Two_chains_writing_the_same_files_is_error_QCOW0005()
    {
        seed.CopyTo(_dir["images"]);
        var p = new ImgProject(_dir.Path, """
            <ItemGroup>
              <QcowChain Include="images/imageC.qcow2" />
              <QcowChain Include="images/imageB.qcow2" />
            </ItemGroup>
            """);
        var b = p.Build();
        Assert.False(b.Success);
        Assert.Contains(b.Log.Errors, e => e.Code == "QCOW0005" && e.File == p.Path && e.Message!.Contains("imageA_sn0.qcow2", StringComparison.Ordinal));

        p.Write("""
            <ItemGroup>
              <QcowChain Include="images/imageC.qcow2" />
              <QcowChain Include="images/imageB.qcow2" OutputDir="$(OutDir)b/" />
            </ItemGroup>
            """);
        AssertBuilt(p.Build());
        seed.AssertLayersCorrect(p.OutDir);
        seed.AssertLayersCorrect(Path.Combine(p.OutDir, "b"), ["imageA_sn0.qcow2", "imageA.qcow2", "imageB_sn0.qcow2", "imageB_sn1.qcow2", "imageB.qcow2"]);
    }

    [SkippableFact]
    public void A_backing_file_outside_the_image_folder_needs_QcowAllowedBackingPaths()
    {
        seed.CopyTo(_dir["base"]);
        Directory.CreateDirectory(_dir["images"]);
        Qemu.Img("create", "-q", "-f", "qcow2", "-b", "../base/imageC.qcow2", "-F", "qcow2", _dir["images/top.qcow2"], "8M");
        Qemu.Io(_dir["images/top.qcow2"], "write -q -P 0x7e 1M 64k");
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/top.qcow2" /></ItemGroup>""");

        AssertOneError(p.Build(), "QCOW0002", _dir["images/top.qcow2"], "QcowAllowedBackingPaths");

        var allowed = p.Build(properties: new Dictionary<string, string> { ["QcowAllowedBackingPaths"] = "base" });
        AssertBuilt(allowed);
        seed.AssertLayersCorrect(p.OutDir);
        Qemu.Img("convert", "-O", "qcow2", _dir["images/top.qcow2"], _dir["top-export.qcow2"]);
        Qemu.AssertIdentical(_dir["top-export.qcow2"], p.Out("top.qcow2"));
    }

    [SkippableFact]
    public void NamePattern_names_the_layers_and_a_clashing_pattern_is_one_error()
    {
        seed.CopyTo(_dir["images"]);
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" NamePattern="{snapshot}-{image}" /></ItemGroup>""");
        AssertBuilt(p.Build());
        string[] expected = ["sn0-imageA.qcow2", "imageA.qcow2", "sn0-imageB.qcow2", "sn1-imageB.qcow2", "imageB.qcow2", "sn0-imageC.qcow2", "imageC.qcow2"];
        foreach (var f in expected) Assert.True(File.Exists(p.Out(f)), $"{f} missing");
        Assert.Contains("\"backing-filename\": \"sn1-imageB.qcow2\"", Qemu.Img("info", "--output=json", p.Out("imageB.qcow2")).StdOut);
        Qemu.AssertIdentical(_dir["images/imageC.qcow2"], p.Out("imageC.qcow2"));

        // The project-wide default applies to items without the metadata.
        Directory.CreateDirectory(_dir["q"]);
        Directory.CreateDirectory(_dir["bad"]);
        var q = new ImgProject(_dir["q"], """<ItemGroup><QcowChain Include="../images/imageC.qcow2" /></ItemGroup>""");
        AssertBuilt(q.Build(properties: new Dictionary<string, string> { ["QcowLayerNamePattern"] = "{image}.{snapshot}" }));
        Assert.True(File.Exists(q.Out("imageB.sn1.qcow2")));
        Assert.True(File.Exists(q.Out("imageB.qcow2")));

        // A pattern under which states would clash is one clear error.
        var bad = new ImgProject(_dir["bad"], """<ItemGroup><QcowChain Include="../images/imageC.qcow2" NamePattern="{image}" /></ItemGroup>""");
        var outcome = bad.Build();
        Assert.False(outcome.Success);
        Assert.Contains("{snapshot}", Assert.Single(outcome.Log.Errors).Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_malformed_image_is_one_QCOW_error_naming_it_and_nothing_is_written()
    {
        Qemu.Require();
        seed.CopyTo(_dir["images"]);
        // Damage imageB's header: l1_size far past qemu's 32 MiB limit.
        string imageB = _dir["images/imageB.qcow2"];
        using (var f = File.Open(imageB, FileMode.Open))
        {
            f.Position = 36;
            f.Write([0x7f, 0xff, 0xff, 0xff]);
        }
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        var b = p.Build();
        Assert.False(b.Success);
        var e = Assert.Single(b.Log.Errors);
        Assert.StartsWith("QCOW", e.Code, StringComparison.Ordinal);
        Assert.Equal(imageB, e.File);
        Assert.Contains("l1_size", e.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(p.OutDir) && Directory.EnumerateFiles(p.OutDir, "*.qcow2").Any());
    }

    [SkippableFact]
    public void An_output_that_cannot_be_written_is_QCOW0003_and_a_probed_backing_format_warns_QCOW0100()
    {
        seed.CopyTo(_dir["images"]);
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        // A folder where a layer should go: the engine cannot write it.
        Directory.CreateDirectory(p.Out("imageB_sn1.qcow2"));
        var failed = p.Build();
        Assert.False(failed.Success);
        var e = Assert.Single(failed.Log.Errors);
        Assert.Equal("QCOW0003", e.Code);
        Assert.Equal(p.Out("imageB_sn1.qcow2"), e.File);
        Directory.Delete(p.Out("imageB_sn1.qcow2"));

        // An overlay that records no backing format: probed, with a warning that names it.
        string top = _dir["images/noformat.qcow2"];
        using (var w = new Qcow.Engine.Writing.QcowWriter(Qcow.Engine.Writing.OutputFile.Create(top), 4 << 20, Qcow.Engine.Writing.WriteOptions.Default, "imageC.qcow2", backingFormat: null))
            w.Commit(false);
        Directory.CreateDirectory(_dir["q"]);
        var q = new ImgProject(_dir["q"], """<ItemGroup><QcowChain Include="../images/noformat.qcow2" /></ItemGroup>""");
        var warned = q.Build();
        Assert.True(warned.Success, warned.Log.Text);
        Assert.Contains(warned.Log.Warnings, x => x.Code == "QCOW0100" && x.File == top);
    }

    public void Dispose() => _dir.Dispose();
}
