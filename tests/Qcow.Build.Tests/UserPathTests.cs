using System.Text.Json;
using System.Text.RegularExpressions;
using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>
/// The paths a new user takes with the packed SDK beyond a plain build (issue #10): clashes, non-qcow2 sources,
/// backslashes, solutions, static graph, publish, the template, queries, the console, hashed inputs in a clone.
/// Every scenario runs dotnet as a child process against the packed SDK.
/// </summary>
[Collection(SeedCollection.Name)]
public sealed partial class UserPathTests(SeedChain seed, PackedSdk sdk) : IClassFixture<PackedSdk>, IDisposable
{
    private readonly TempDir _dir = new("paths");

    /// <summary>A project folder with the seed chain in images/, global.json and nuget.config; returns the project path.</summary>
    private string Project(string name, string body)
    {
        string folder = _dir[name];
        seed.CopyTo(Path.Combine(folder, "images"));
        sdk.Configure(folder);
        return PackedSdk.WriteProject(folder, body);
    }

    private static (int ExitCode, string Output) Build(string proj, params string[] args) =>
        Dotnet.Run(Path.GetDirectoryName(proj)!, ["build", proj, "-nodeReuse:false", .. args]);

    private static string Ok(string proj, params string[] args) =>
        Dotnet.Ok(Path.GetDirectoryName(proj)!, ["build", proj, "-nodeReuse:false", .. args]);

    /// <summary>Every file and folder under <paramref name="folder"/> (except the packages folder).</summary>
    private static IEnumerable<string> Tree(string folder) =>
        Directory.EnumerateFileSystemEntries(folder, "*", SearchOption.AllDirectories).Where(p => !p.Contains("/.packages", StringComparison.Ordinal));

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void A_chain_layer_and_an_export_claiming_one_file_is_one_QCOW0005_naming_both_and_nothing_is_written()
    {
        string proj = Project("clash", """
            <ItemGroup>
              <QcowChain Include="images/imageC.qcow2" />
              <QcowSnapshot Include="images/imageB.qcow2" Snapshot="sn1" />
            </ItemGroup>
            """);
        var (code, output) = Build(proj);
        Assert.NotEqual(0, code);
        var clash = Assert.Single(output.Split('\n').Where(l => l.Contains("error QCOW0005", StringComparison.Ordinal)).Distinct());
        Assert.Contains(Path.Combine(_dir["clash/bin/Debug"], "imageB_sn1.qcow2"), clash, StringComparison.Ordinal);
        Assert.Contains("QcowChain images/imageC.qcow2", clash, StringComparison.Ordinal);
        Assert.Contains("QcowSnapshot images/imageB.qcow2", clash, StringComparison.Ordinal);
        // MSBuild makes bin/Debug/ itself; nothing is written into it, and no stamp either.
        Assert.Empty(Directory.EnumerateFiles(_dir["clash/bin"], "*", SearchOption.AllDirectories));
        Assert.False(Directory.Exists(_dir["clash/obj/Debug/qcow"]));
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void A_text_file_is_not_a_disk_unless_Format_raw_says_so_and_backslashes_never_name_a_file()
    {
        // A text file as QcowChain: error naming it, no output.
        string text = Project("text", """<ItemGroup><QcowChain Include="images/notes.txt" /></ItemGroup>""");
        File.WriteAllText(_dir["text/images/notes.txt"], "meeting notes, not a disk\n");
        var (code, output) = Build(text);
        Assert.NotEqual(0, code);
        Assert.Contains($"{_dir["text/images/notes.txt"]} : error QCOW0002: QcowChain top image is not a qcow2 image", output, StringComparison.Ordinal);
        Assert.Contains("Format=\"raw\"", output, StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(_dir["text/bin"], "*", SearchOption.AllDirectories));

        // A raw disk with Format="raw": one layer for its single state (chain and export alike), as qemu-img reads
        // it; paths with backslashes (metadata and properties) land in real folders.
        string raw = Project("raw", """
            <PropertyGroup><QcowOutputDir>out1\</QcowOutputDir></PropertyGroup>
            <ItemGroup>
              <QcowChain Include="images/disk.raw" Format="raw" />
              <QcowChain Include="images/imageC.qcow2" OutputDir="out2\sub\" />
              <QcowSnapshot Include="images\disk.raw" Format="raw" OutputFile="exports\disk-copy.qcow2" />
            </ItemGroup>
            """);
        string disk = _dir["raw/images/disk.raw"];
        Qemu.Img("create", "-f", "raw", disk, "4M");
        Qemu.Io(disk, "write -P 0x5a 0 64k", "write -P 0x33 1M 128k");
        Ok(raw);
        Qemu.AssertIdentical(disk, _dir["raw/out1/disk.qcow2"]);
        Qemu.AssertClean(_dir["raw/out1/disk.qcow2"]);
        using (var json = JsonDocument.Parse(File.ReadAllText(_dir["raw/out1/chain.json"])))
            Assert.Equal("disk.qcow2", Assert.Single(json.RootElement.GetProperty("layers").EnumerateArray()).GetProperty("file").GetString());
        Qemu.AssertIdentical(disk, _dir["raw/exports/disk-copy.qcow2"]);
        seed.AssertLayersCorrect(_dir["raw/out2/sub"]);
        Assert.DoesNotContain(Tree(_dir["raw"]), p => Path.GetFileName(p).Contains('\\', StringComparison.Ordinal));

        // Format="raw" on a qcow2 image is an error too (it would be read as its raw bytes).
        File.WriteAllText(raw, """<Project Sdk="Qcow.Build.Sdk"><ItemGroup><QcowChain Include="images/imageC.qcow2" Format="raw" /></ItemGroup></Project>""");
        var (rcode, routput) = Build(raw);
        Assert.NotEqual(0, rcode);
        Assert.Contains($"{_dir["raw/images/imageC.qcow2"]} : error QCOW0002: QcowChain top image is a qcow2 image", routput, StringComparison.Ordinal);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Imgproj_projects_join_sln_and_slnx_solutions_and_build_in_an_isolated_static_graph()
    {
        Qemu.Require();
        string samples = _dir["samples"];
        sdk.CopySamples(samples, "seed/seed.imgproj", "seed/images/imageA.qcow2", "seed/images/imageB.qcow2", "seed/images/imageC.qcow2", "consumer/consumer.imgproj");
        string flat = _dir["samples/consumer/bin/Debug/imageC-flat.qcow2"];

        // -graph -isolate: every target called on the reference (GetQcowImages) is declared.
        Dotnet.Ok(samples, "restore", "consumer/consumer.imgproj");
        Dotnet.Ok(samples, "build", "consumer/consumer.imgproj", "-graph", "-isolate", "--no-restore", "-nodeReuse:false");
        Qemu.AssertIdentical(_dir["samples/seed/images/imageC.qcow2"], flat);

        // dotnet sln add, .slnx and .sln.
        Dotnet.Ok(samples, "new", "sln", "-n", "all");
        string add = Dotnet.Ok(samples, "sln", "all.slnx", "add", "seed/seed.imgproj", "consumer/consumer.imgproj");
        Assert.DoesNotContain("unknown project type", add, StringComparison.OrdinalIgnoreCase);
        string slnx = File.ReadAllText(_dir["samples/all.slnx"]);
        Assert.Contains("seed/seed.imgproj", slnx, StringComparison.Ordinal);
        Assert.Contains("consumer/consumer.imgproj", slnx, StringComparison.Ordinal);
        Dotnet.Ok(samples, "new", "sln", "-n", "classic", "--format", "sln");
        string addSln = Dotnet.Ok(samples, "sln", "classic.sln", "add", "seed/seed.imgproj");
        Assert.DoesNotContain("unknown project type", addSln, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("seed.imgproj", File.ReadAllText(_dir["samples/classic.sln"]), StringComparison.Ordinal);

        // dotnet build all.slnx builds both projects (from clean).
        Directory.Delete(_dir["samples/seed/bin"], recursive: true);
        Directory.Delete(_dir["samples/consumer/bin"], recursive: true);
        Dotnet.Ok(samples, "build", "all.slnx", "-nodeReuse:false");
        Assert.Equal(SeedStates.All.Select(l => l.Layer).Append("chain.json").Order(), Directory.GetFiles(_dir["samples/seed/bin/Debug"]).Select(Path.GetFileName).Order());
        Qemu.AssertIdentical(_dir["samples/seed/images/imageC.qcow2"], _dir["samples/seed/bin/Debug/imageC.qcow2"]);
        Qemu.AssertIdentical(_dir["samples/seed/images/imageC.qcow2"], flat);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Publish_copies_layers_and_chain_json_incrementally_and_says_so()
    {
        string proj = Project("pub", """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        string folder = _dir["pub"];
        string built = _dir["pub/bin/Release"], published = _dir["pub/bin/Release/publish"];
        string[] files = [.. SeedStates.All.Select(l => l.Layer), "chain.json"];
        void AssertPublished(string dir)
        {
            foreach (var f in files)
                Assert.Equal(FileHash.Sha256(Path.Combine(built, f)), FileHash.Sha256(Path.Combine(dir, f)));
        }

        string first = Dotnet.Ok(folder, "publish", proj, "-nodeReuse:false");
        Assert.Contains($"images -> {published}/ (8 files: 8 copied, 0 unchanged)", first, StringComparison.Ordinal);
        AssertPublished(published);
        seed.AssertLayersCorrect(published);
        var times = SeedChain.Times(published);

        // Again: nothing copied, nothing touched.
        string second = Dotnet.Ok(folder, "publish", proj, "-nodeReuse:false");
        Assert.Contains("(8 files: 0 copied, 8 unchanged)", second, StringComparison.Ordinal);
        Assert.Equal(times, SeedChain.Times(published));

        // imageC changed: its two layers and chain.json are rebuilt and copied, the rest stays.
        Qemu.Io(_dir["pub/images/imageC.qcow2"], "write -P 0x77 0 64k");
        string third = Dotnet.Ok(folder, "publish", proj, "-nodeReuse:false");
        Assert.Contains("(8 files: 3 copied, 5 unchanged)", third, StringComparison.Ordinal);
        AssertPublished(published);
        Qemu.AssertIdentical(_dir["pub/images/imageC.qcow2"], Path.Combine(published, "imageC.qcow2"));

        // -o DIR.
        string output = _dir["pub-out"];
        string fourth = Dotnet.Ok(folder, "publish", proj, "-nodeReuse:false", "-o", output);
        Assert.Contains($"images -> {output}/ (8 files: 8 copied, 0 unchanged)", fourth, StringComparison.Ordinal);
        AssertPublished(output);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void The_template_keeps_images_for_any_name_and_writes_a_nuget_config_for_a_feed_outside_this_repository()
    {
        Qemu.Require();
        string hive = _dir["hive"];
        Dotnet.Ok(_dir.Path, "new", "install", sdk.TemplatePackage, "--debug:custom-hive", hive);

        // No feed: no nuget.config. Any project name keeps images/.
        Dotnet.Ok(_dir.Path, "new", "imgproj", "-n", "Images", "-o", _dir["NoFeed"], "--debug:custom-hive", hive);
        Assert.False(File.Exists(_dir["NoFeed/nuget.config"]));
        Assert.Contains("<QcowChain Include=\"images/top.qcow2\" />", File.ReadAllText(_dir["NoFeed/Images.imgproj"]), StringComparison.Ordinal);

        // A project outside any repository: the version in Sdk=, the feed in the nuget.config the template writes.
        string empty = _dir["Empty"];
        Dotnet.Ok(_dir.Path, "new", "imgproj", "-n", "Empty", "-o", empty, "--debug:custom-hive", hive,
            "--SdkVersion", sdk.Version, "--Feed", sdk.Feed);
        string proj = File.ReadAllText(Path.Combine(empty, "Empty.imgproj"));
        Assert.Contains("<QcowChain Include=\"images/top.qcow2\" />", proj, StringComparison.Ordinal);
        Assert.Contains($"Sdk=\"Qcow.Build.Sdk/{sdk.Version}\"", proj, StringComparison.Ordinal);
        Assert.Contains("qcow2 images here", File.ReadAllText(Path.Combine(empty, "images", "README.md")), StringComparison.Ordinal);
        Assert.Contains($"value=\"{sdk.Feed}\"", File.ReadAllText(Path.Combine(empty, "nuget.config")), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(empty, "global.json")));

        // The seed chain with its top image named as the template expects; packages into a folder of the test's own.
        seed.CopyTo(Path.Combine(empty, "images"));
        File.Move(Path.Combine(empty, "images", "imageC.qcow2"), Path.Combine(empty, "images", "top.qcow2"));
        var (code, output) = Dotnet.RunWith(new Dictionary<string, string> { ["NUGET_PACKAGES"] = _dir["nuget-packages"] }, empty, "build", "-nodeReuse:false");
        Assert.True(code == 0, output);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(empty, "bin", "Debug", "chain.json")));
        Assert.Equal(["imageA_sn0.qcow2", "imageA.qcow2", "imageB_sn0.qcow2", "imageB_sn1.qcow2", "imageB.qcow2", "top_sn0.qcow2", "top.qcow2"],
            json.RootElement.GetProperty("layers").EnumerateArray().Select(l => l.GetProperty("file").GetString()));
        Qemu.AssertIdentical(seed.Export("imageC.qcow2", null), Path.Combine(empty, "bin", "Debug", "top.qcow2"));
    }

    [GeneratedRegex(@"\x1b(\[[0-9;?]*[a-zA-Z]|\][^\x1b\x07]*(\x1b\\|\x07))")]
    private static partial Regex Ansi();

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void GetQcowImages_is_a_query_the_console_shows_output_and_progress_and_question_names_the_output()
    {
        string proj = Project("q", """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        string folder = _dir["q"], outDir = _dir["q/bin/Debug"];
        JsonElement Query()
        {
            string json = Dotnet.Ok(folder, "msbuild", proj, "-t:GetQcowImages", "-getItem:QcowImage", "-nodeReuse:false");
            return JsonDocument.Parse(json[json.IndexOf('{', StringComparison.Ordinal)..]).RootElement.GetProperty("Items").GetProperty("QcowImage");
        }

        // Never built: the query returns nothing and writes nothing (no image, no stamp, no bin\Debug folder).
        Assert.Equal(0, Query().GetArrayLength());
        Assert.False(Directory.Exists(_dir["q/bin"]));
        Assert.False(Directory.Exists(_dir["q/obj/Debug/qcow"]));
        Assert.DoesNotContain(Tree(folder), p => Path.GetFileName(p).Contains('\\', StringComparison.Ordinal));

        // The terminal logger shows the project's output line with a summary.
        string tl = Ansi().Replace(Ok(proj, "-tl:on"), "");
        Assert.Matches(@"images net10\.0 succeeded \([0-9.]+s\) → bin/Debug/ \(7 layers, [0-9.]+ MiB, 7 rewritten\)", tl);

        // After the build the query returns today's layers, with their hashes, and rewrites nothing.
        var times = SeedChain.Times(outDir);
        var items = Query().EnumerateArray().ToList();
        Assert.Equal(SeedStates.All.Select(l => Path.Combine(outDir, l.Layer)), items.Select(i => i.GetProperty("FullPath").GetString()));
        Assert.All(items, i => Assert.Equal(FileHash.Sha256(i.GetProperty("FullPath").GetString()!), i.GetProperty("Sha256").GetString()));
        Assert.Equal(times, SeedChain.Times(outDir));

        // The console at its default verbosity: one output line; small layers show no progress, and layers at least
        // QcowProgressBytes large do (the threshold is lowered here: the seed layers are 8 MiB).
        string quiet = Ok(proj, "-tl:off");
        Assert.Contains($"images -> {outDir}/ (7 layers, ", quiet, StringComparison.Ordinal);
        Assert.Contains(", 0 rewritten)", quiet, StringComparison.Ordinal);
        string progress = Ok(proj, "-tl:off", "-p:QcowClusterSize=4096", "-p:QcowProgressBytes=8388608");
        Assert.Contains("imageB_sn1.qcow2: 100% of 8 MiB", progress, StringComparison.Ordinal);
        Assert.Contains(", 7 rewritten)", progress, StringComparison.Ordinal);
        Assert.DoesNotContain("% of", Ok(proj, "-tl:off"), StringComparison.Ordinal);

        // -question names the stale output, not its stamp.
        SeedChain.Touch(_dir["q/images/imageC.qcow2"]);
        var (code, question) = Build(proj, "-question");
        Assert.NotEqual(0, code);
        Assert.Contains($"{Path.Combine(outDir, "imageC.qcow2")} : error QCOW0006", question, StringComparison.Ordinal);
        Assert.DoesNotContain(".stamp : error", question, StringComparison.Ordinal);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Hashed_inputs_are_cached_in_obj_and_a_copy_of_the_project_elsewhere_is_up_to_date()
    {
        string proj = Project("h", """
            <PropertyGroup><QcowHashInputs>true</QcowHashInputs></PropertyGroup>
            <ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>
            """);
        string folder = _dir["h"];
        Ok(proj);
        string cache = _dir["h/obj/Debug/qcow/input-hashes.cache"];
        var lines = File.ReadAllLines(cache);
        Assert.Equal(3, lines.Length);
        string imageA = _dir["h/images/imageA.qcow2"];
        Assert.Contains(lines, l => l.StartsWith(FileHash.Sha256(imageA) + " ", StringComparison.Ordinal) && l.EndsWith(" " + imageA, StringComparison.Ordinal));

        // A no-op build takes the hashes from the cache: an entry edited there shows (the stamps would change) ...
        File.WriteAllLines(cache, lines.Select(l => l.EndsWith(" " + imageA, StringComparison.Ordinal) ? new string('0', 64) + l[64..] : l));
        Assert.NotEqual(0, Build(proj, "-question").ExitCode);
        // ... and an entry whose file changed time is hashed again: a touch alone changes nothing.
        SeedChain.Touch(imageA);
        Ok(proj, "-question");
        // ... and so is an entry of another inode (the file was replaced), even with the same size and time (the
        // build first caches the touched file's hash; -question writes no cache).
        Ok(proj);
        Assert.Contains(File.ReadAllLines(cache), l => l.EndsWith(" " + imageA, StringComparison.Ordinal)
            && l.Split(' ')[2] == File.GetLastWriteTimeUtc(imageA).Ticks.ToString(System.Globalization.CultureInfo.InvariantCulture));
        File.WriteAllLines(cache, File.ReadAllLines(cache).Select(l =>
        {
            if (!l.EndsWith(" " + imageA, StringComparison.Ordinal)) return l;
            var f = l.Split(' ', 5);
            return string.Join(' ', new string('0', 64), f[1], f[2], (ulong.Parse(f[3], System.Globalization.CultureInfo.InvariantCulture) + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), f[4]);
        }));
        Ok(proj, "-question");

        // Stamps name paths relative to the project: a copy elsewhere, with times kept or not, is up to date.
        var times = SeedChain.Times(_dir["h/bin/Debug"]);
        foreach (var (name, args) in new[] { ("kept", "-a"), ("new", "-r") })
        {
            string copy = _dir[$"copy-{name}"];
            Qemu.Run("cp", [args, folder, copy], [0]);
            sdk.Configure(copy);
            string copied = Path.Combine(copy, "images.imgproj");
            var before = SeedChain.Times(Path.Combine(copy, "bin", "Debug"));
            var (code, output) = Build(copied, "-question");
            Assert.True(code == 0, $"cp {args}: {output}");
            string again = Ok(copied, "-v:n");
            Assert.Contains("Skipping target \"QcowLinearize\" because all output files are up-to-date", again, StringComparison.Ordinal);
            Assert.Equal(before, SeedChain.Times(Path.Combine(copy, "bin", "Debug")));
        }
        Assert.Equal(times, SeedChain.Times(_dir["h/bin/Debug"]));
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Ctrl_C_while_inputs_are_hashed_stops_the_build_with_QCOW0007_and_writes_nothing()
    {
        // A 1 TiB sparse raw disk: hashing it takes minutes, so only a cancel that is observed ends the build soon.
        string proj = Project("cancel", """
            <PropertyGroup><QcowHashInputs>true</QcowHashInputs></PropertyGroup>
            <ItemGroup><QcowChain Include="images/huge.raw" Format="raw" /></ItemGroup>
            """);
        using (var f = File.Create(_dir["cancel/images/huge.raw"])) f.SetLength(1L << 40);
        Dotnet.Ok(_dir["cancel"], "restore", proj);
        // Signalled once MSBuild says the task started (-v:d); hashing 1 TiB outlasts any delivery of the signal.
        using var p = Dotnet.StartUntil("Task \"ResolveQcowInputs\"", _dir["cancel"], ["build", proj, "-nodeReuse:false", "--no-restore", "-v:d"], out var output);
        Qemu.Run("kill", ["-INT", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], [0]);
        // A hang guard, not a timing claim: no stamp in obj (asserted below) shows the cancel came while hashing.
        bool stopped = p.WaitForExit(TimeSpan.FromMinutes(5));
        if (!stopped) p.Kill(entireProcessTree: true);
        Assert.True(stopped, "the build did not stop after SIGINT while hashing");
        p.WaitForExit();
        Assert.NotEqual(0, p.ExitCode);
        lock (output) Assert.Contains("error QCOW0007", output.ToString(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir["cancel/obj/Debug/qcow"]));
        Assert.Empty(Directory.EnumerateFiles(_dir["cancel/bin"], "*", SearchOption.AllDirectories));
    }

    public void Dispose() => _dir.Dispose();
}
