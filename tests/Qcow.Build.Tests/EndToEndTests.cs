using System.Diagnostics;
using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>
/// The packed SDK used as a user uses it: a temporary project folder with global.json (msbuild-sdks), a cleared
/// nuget.config with the test feed and its own packages folder, built with <c>dotnet build -nodeReuse:false</c>.
/// Few scenarios, many assertions each: every child build costs seconds.
/// </summary>
[Collection(SeedCollection.Name)]
public sealed class EndToEndTests(SeedChain seed, PackedSdk sdk) : IClassFixture<PackedSdk>, IDisposable
{
    private readonly TempDir _dir = new("e2e");

    private static readonly string[] CLayers = ["imageC_sn0.qcow2", "imageC.qcow2"];

    private static string Project(string folder, string body) => PackedSdk.WriteProject(folder, body);

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Build_rebuild_question_touch_property_clean_and_errors_through_the_packed_sdk()
    {
        seed.CopyTo(_dir["images"]);
        sdk.Configure(_dir.Path);
        string proj = Project(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        string outDir = _dir["bin/Debug"];

        // First build: the layers are what qemu-img exports.
        Dotnet.Ok(_dir.Path, "build", proj, "-nodeReuse:false");
        seed.AssertLayersCorrect(outDir);
        Assert.True(File.Exists(Path.Combine(outDir, "chain.json")));
        Assert.False(Directory.Exists(_dir["obj/Debug/net10.0"]) && Directory.EnumerateFiles(_dir["obj/Debug"], "*.dll", SearchOption.AllDirectories).Any());
        var before = SeedChain.Times(outDir);

        // Second build: the work target is skipped and nothing is rewritten; -question passes.
        string second = Dotnet.Ok(_dir.Path, "build", proj, "-nodeReuse:false", "-v:n");
        Assert.Contains("Skipping target \"QcowLinearize\" because all output files are up-to-date", second, StringComparison.Ordinal);
        Assert.Equal(before, SeedChain.Times(outDir));
        Dotnet.Ok(_dir.Path, "build", proj, "-nodeReuse:false", "-question");

        // Touch imageC: -question fails, a build rewrites imageC's layers (and chain.json) only.
        SeedChain.Touch(_dir["images/imageC.qcow2"]);
        var (qcode, qout) = Dotnet.Run(_dir.Path, "build", proj, "-nodeReuse:false", "-question");
        Assert.NotEqual(0, qcode);
        Assert.Contains("error QCOW0006", qout, StringComparison.Ordinal);
        Assert.Equal(before, SeedChain.Times(outDir));
        Dotnet.Ok(_dir.Path, "build", proj, "-nodeReuse:false");
        var after = SeedChain.Times(outDir);
        foreach (var (f, t) in before)
            Assert.True(CLayers.Contains(f) || f == "chain.json" ? t != after[f] : t == after[f], $"{f}: {t} -> {after[f]}");
        seed.AssertLayersCorrect(outDir, CLayers);

        // A property change rebuilds everything, with -bl writing a binary log.
        string binlog = _dir["build.binlog"];
        Dotnet.Ok(_dir.Path, "build", proj, "-nodeReuse:false", "-p:QcowClusterSize=4096", $"-bl:{binlog}");
        Assert.True(new FileInfo(binlog).Length > 0);
        var third = SeedChain.Times(outDir);
        foreach (var l in SeedStates.All) Assert.NotEqual(after[l.Layer], third[l.Layer]);
        Assert.Contains("\"cluster-size\": 4096", Qemu.Img("info", "--output=json", Path.Combine(outDir, "imageB_sn1.qcow2")).StdOut, StringComparison.Ordinal);
        seed.AssertLayersCorrect(outDir);

        // dotnet clean removes what the build wrote.
        Dotnet.Ok(_dir.Path, "clean", proj, "-nodeReuse:false");
        Assert.Empty(Directory.EnumerateFiles(outDir));

        // A missing source image: error QCOW0001 naming it.
        string missing = Project(_dir["missing"], """<ItemGroup><QcowChain Include="images/nope.qcow2" /></ItemGroup>""");
        var (mcode, mout) = Dotnet.Run(_dir["missing"], "build", missing, "-nodeReuse:false");
        Assert.NotEqual(0, mcode);
        Assert.Contains($"{_dir["missing/images/nope.qcow2"]} : error QCOW0001:", mout, StringComparison.Ordinal);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Template_project_builds_with_a_bare_dotnet_build()
    {
        Qemu.Require();
        string hive = _dir["hive"];
        Dotnet.Ok(_dir.Path, "new", "install", sdk.TemplatePackage, "--debug:custom-hive", hive);
        Dotnet.Ok(_dir.Path, "new", "imgproj", "-n", "Disks", "-o", _dir["Disks"], "--debug:custom-hive", hive,
            "--SdkVersion", sdk.Version, "--TopImage", "images/imageC.qcow2");
        string proj = _dir["Disks/Disks.imgproj"];
        Assert.Contains($"Sdk=\"Qcow.Build.Sdk/{sdk.Version}\"", File.ReadAllText(proj), StringComparison.Ordinal);
        Assert.Contains("<QcowChain Include=\"images/imageC.qcow2\" />", File.ReadAllText(proj), StringComparison.Ordinal);
        seed.CopyTo(_dir["Disks/images"]);
        sdk.Configure(_dir["Disks"]);
        Dotnet.Ok(_dir["Disks"], "build", "-nodeReuse:false");
        seed.AssertLayersCorrect(_dir["Disks/bin/Debug"]);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void The_committed_samples_build_through_the_packed_sdk_and_their_script_remakes_the_images()
    {
        Qemu.Require();
        // The samples as committed, with the SDK version pointed at the test feed.
        string samples = _dir["samples"];
        sdk.CopySamples(samples, "seed/seed.imgproj", "seed/make-images.sh", "seed/images/imageA.qcow2", "seed/images/imageB.qcow2", "seed/images/imageC.qcow2", "consumer/consumer.imgproj");

        // Building the consumer builds the seed sample through its ProjectReference and flattens its top layer.
        Dotnet.Ok(_dir["samples/consumer"], "build", "consumer.imgproj", "-nodeReuse:false");
        string images = _dir["samples/seed/images"], layers = _dir["samples/seed/bin/Debug"];
        foreach (var (file, image, snapshot) in SeedStates.All)
        {
            Qemu.AssertIdentical(Qemu.Export(Path.Combine(images, image), snapshot, _dir[$"export-{file}"]), Path.Combine(layers, file));
        }
        Qemu.AssertIdentical(Path.Combine(images, "imageC.qcow2"), _dir["samples/consumer/bin/Debug/imageC-flat.qcow2"]);

        // The script that made the committed images makes the same chain again (4 MiB disks, the same snapshots).
        Qemu.Run("bash", [_dir["samples/seed/make-images.sh"]], [0]);
        Assert.Contains("sn1", Qemu.Img("snapshot", "-l", Path.Combine(images, "imageB.qcow2")).StdOut, StringComparison.Ordinal);
        Assert.Contains("\"virtual-size\": 4194304", Qemu.Img("info", "--output=json", Path.Combine(images, "imageC.qcow2")).StdOut, StringComparison.Ordinal);
        Qemu.AssertIdentical(Path.Combine(Repo.Root, "samples/seed/images/imageC.qcow2"), Path.Combine(images, "imageC.qcow2"));
        Assert.All(Directory.GetFiles(images), f => Assert.True(new FileInfo(f).Length < 128 * 1024, $"{f} is not small"));
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void A_build_killed_mid_write_leaves_nothing_a_later_build_takes_as_up_to_date()
    {
        Qemu.Require();
        // base(s0) <- top, three states; the test hook holds the build at a chosen step, so no size is needed to catch it.
        var b = new ImageBuilder(_dir, seed: 21);
        Directory.CreateDirectory(_dir["k/images"]);
        string bas = b.Create("k/images/base.qcow2", "512M");
        for (int i = 0; i < 3; i++) b.WriteRandom(bas, i * (128L << 20), 4L << 20);
        b.Snapshot(bas, "s0");
        for (int i = 0; i < 3; i++) b.WriteRandom(bas, i * (128L << 20) + (64L << 20), 4L << 20);
        string top = b.Create("k/images/top.qcow2", "512M", backing: "base.qcow2");
        for (int i = 0; i < 3; i++) b.WriteRandom(top, i * (128L << 20) + (32L << 20), 4L << 20);
        sdk.Configure(_dir["k"]);
        string proj = Project(_dir["k"], """<ItemGroup><QcowChain Include="images/top.qcow2" /></ItemGroup>""");
        string outDir = _dir["k/bin/Debug"];
        Dotnet.Ok(_dir["k"], "restore", proj);

        // qemu-img's exports of the three states: any layer file present must be complete and equal to its state.
        var exports = new Dictionary<string, string>
        {
            ["base_s0.qcow2"] = _dir["export-base-s0.qcow2"],
            ["base.qcow2"] = _dir["export-base.qcow2"],
            ["top.qcow2"] = _dir["export-top.qcow2"],
        };
        Qemu.Export(bas, "s0", exports["base_s0.qcow2"]);
        Qemu.Export(bas, null, exports["base.qcow2"]);
        Qemu.Export(top, null, exports["top.qcow2"]);
        void AssertPresentLayersComplete()
        {
            foreach (var (layer, export) in exports)
            {
                string path = Path.Combine(outDir, layer);
                if (!File.Exists(path)) continue;
                Qemu.AssertClean(path);
                Qemu.AssertIdentical(export, path);
            }
        }

        // Ctrl+C (SIGINT) once the second layer is written but not yet in place: the build stops, cancelled, leaving no
        // temporary and no chain.json; a layer file is there only if it was complete (renamed into place) before the cancel.
        var (interrupted, intOutput) = Interrupt(proj, "INT");
        Assert.NotEqual(0, interrupted.ExitCode);
        Assert.Contains("QCOW0007", intOutput.ToString(), StringComparison.Ordinal);
        Assert.Empty(Directory.EnumerateFiles(outDir, ".*qcow-tmp-*"));
        Assert.False(File.Exists(Path.Combine(outDir, "chain.json")));
        AssertPresentLayersComplete();
        interrupted.Dispose();

        // Kill -9 the build (its whole process tree) at the same point, from scratch.
        foreach (var f in Directory.EnumerateFiles(outDir, "*.qcow2")) File.Delete(f);
        var (killed, _) = Interrupt(proj, "KILL");
        killed.Dispose();
        Assert.False(File.Exists(Path.Combine(outDir, "chain.json")));
        AssertPresentLayersComplete();

        // The next -question fails (something is out of date), the next build completes the chain correctly.
        Assert.NotEqual(0, Dotnet.Run(_dir["k"], "build", proj, "-nodeReuse:false", "-question").ExitCode);
        Dotnet.Ok(_dir["k"], "build", proj, "-nodeReuse:false");
        Assert.Empty(Directory.EnumerateFiles(outDir, ".*qcow-tmp-*"));
        Assert.All(exports.Keys, l => Assert.True(File.Exists(Path.Combine(outDir, l)), l));
        AssertPresentLayersComplete();
        Dotnet.Ok(_dir["k"], "build", proj, "-nodeReuse:false", "-question");
    }

    /// <summary>
    /// Starts a build held by the tasks' test hook once the second layer is fully written to its temporary file (not
    /// yet renamed into place), and sends <paramref name="signal"/> to it there.
    /// </summary>
    private (Process Process, System.Text.StringBuilder Output) Interrupt(string proj, string signal)
    {
        const string step = "written:base.qcow2";
        var p = Dotnet.StartUntil($"qcow: test hook: paused at {step}", _dir["k"], ["build", proj, "-nodeReuse:false", "--no-restore"], out var output,
            new Dictionary<string, string> { ["QCOW_TEST_PAUSE_AT"] = step });
        if (signal == "KILL") p.Kill(entireProcessTree: true);
        else Qemu.Run("kill", [$"-{signal}", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], [0]);
        // A hang guard, not a timing claim: the held build only ends through the signal.
        Assert.True(p.WaitForExit(TimeSpan.FromMinutes(5)), $"the build did not stop after SIG{signal}");
        p.WaitForExit();
        return (p, output);
    }

    public void Dispose() => _dir.Dispose();
}
