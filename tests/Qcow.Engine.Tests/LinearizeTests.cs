using System.Text.Json;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Views;

namespace Qcow.Engine.Tests;

/// <summary>
/// The heart of the product: the seed chain imageA(sn0) -> imageB(sn0,sn1) -> imageC(sn0) linearized in one step,
/// checked layer by layer against qemu-img's full export of each source state, and against the stock pipeline.
/// </summary>
public class LinearizeTests
{
    private static IReadOnlyList<SeedState> SeedStates => Qcow.Testing.SeedStates.All;

    /// <summary>qemu-img's full export of a source state.</summary>
    internal static string Export(TempDir dir, string image, string? snapshot)
    {
        string output = dir[$"ref-{Path.GetFileNameWithoutExtension(image)}-{snapshot ?? "current"}.qcow2"];
        return File.Exists(output) ? output : Qemu.Export(dir[image], snapshot, output);
    }

    [SkippableFact]
    public void A_partial_rebuild_takes_kept_layers_hashes_from_chain_json_until_they_change()
    {
        Qemu.Require();
        using var dir = new TempDir("partial");
        string top = new ImageBuilder(dir, seed: 31).SeedChain("8M");
        string outDir = dir["out"];
        var full = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = outDir });
        string kept = Path.Combine(outDir, SeedStates[0].Layer);
        var keptTime = File.GetLastWriteTimeUtc(kept);
        // Change a kept layer behind the tool's back, keeping its time: the recorded hash is taken, the file not read.
        byte[] bytes = File.ReadAllBytes(kept);
        bytes[^1] ^= 0xff;
        File.WriteAllBytes(kept, bytes);
        File.SetLastWriteTimeUtc(kept, keptTime);
        var onlyTop = new HashSet<string> { Path.GetFullPath(top) };
        var partial = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = outDir, OnlyImages = onlyTop });
        Assert.Null(partial.Layers[0].Stats);
        Assert.Equal(full.Layers[0].Sha256, partial.Layers[0].Sha256);
        Assert.NotEqual(FileHash.Sha256(kept), partial.Layers[0].Sha256);
        Assert.NotNull(partial.Layers[^1].Stats);
        Assert.Equal(FileHash.Sha256(Path.Combine(outDir, SeedStates[^1].Layer)), partial.Layers[^1].Sha256);

        // Written after chain.json: hashed again.
        File.SetLastWriteTimeUtc(kept, DateTime.UtcNow.AddMinutes(5));
        var again = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = outDir, OnlyImages = onlyTop });
        Assert.Equal(FileHash.Sha256(kept), again.Layers[0].Sha256);

        // A damaged chain.json is not trusted either (the layer changed again, with its old time).
        bytes = File.ReadAllBytes(kept);
        bytes[^2] ^= 0xff;
        File.WriteAllBytes(kept, bytes);
        File.SetLastWriteTimeUtc(kept, keptTime);
        File.WriteAllText(Path.Combine(outDir, LinearizeOperation.ChainJsonName), "{");
        var noManifest = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = outDir, OnlyImages = onlyTop });
        Assert.Equal(FileHash.Sha256(kept), noManifest.Layers[0].Sha256);
    }

    [SkippableFact]
    public void Seed_chain_linearizes_into_seven_exact_layers()
    {
        Qemu.Require();
        using var dir = new TempDir("lin");
        string top = new ImageBuilder(dir, seed: 2013).SeedChain("64M");
        var sources = Directory.GetFiles(dir.Path).ToDictionary(f => f, FileHash.Sha256);
        string outDir = dir["out"];
        var result = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = outDir });

        Assert.Equal(SeedStates.Select(s => s.Layer), result.Layers.Select(l => l.Layer.FileName));
        for (int i = 0; i < SeedStates.Count; i++)
        {
            var (layer, image, snapshot) = SeedStates[i];
            string path = Path.Combine(outDir, layer);
            Qemu.AssertClean(path);
            Qemu.AssertIdentical(Export(dir, image, snapshot), path);
            var info = JsonDocument.Parse(Qemu.Img("info", "--output=json", path).StdOut).RootElement;
            if (i == 0) Assert.False(info.TryGetProperty("backing-filename", out _));
            else Assert.Equal(SeedStates[i - 1].Layer, info.GetProperty("backing-filename").GetString());
        }

        // chain.json lists the layers bottom-up with their facts.
        var json = JsonDocument.Parse(File.ReadAllText(result.ChainJsonPath)).RootElement.GetProperty("layers");
        Assert.Equal(7, json.GetArrayLength());
        for (int i = 0; i < 7; i++)
        {
            var l = json[i];
            Assert.Equal(SeedStates[i].Layer, l.GetProperty("file").GetString());
            Assert.Equal(SeedStates[i].Image, l.GetProperty("sourceImage").GetString());
            Assert.Equal(SeedStates[i].Snapshot, l.GetProperty("snapshot").GetString());
            Assert.Equal(64L << 20, l.GetProperty("virtualSize").GetInt64());
            Assert.Equal(FileHash.Sha256(Path.Combine(outDir, SeedStates[i].Layer)), l.GetProperty("sha256").GetString());
        }

        // Sources are never modified.
        foreach (var (f, h) in sources) Assert.Equal(h, FileHash.Sha256(f));
    }

    [SkippableFact]
    public void Layers_are_no_larger_than_the_stock_qemu_img_pipeline()
    {
        Qemu.Require();
        using var dir = new TempDir("stock");
        string top = new ImageBuilder(dir, seed: 77).SeedChain("32M");
        var ours = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = dir["ours"] });

        // Stock: full export of every state, an empty overlay on it, safe rebase onto the full export below, then
        // an unsafe rebase onto the layer below.
        string stock = dir["stock"];
        Directory.CreateDirectory(stock);
        long stockTotal = 0;
        for (int i = 0; i < SeedStates.Count; i++)
        {
            var (layer, image, snapshot) = SeedStates[i];
            string full = Export(dir, image, snapshot);
            string path = Path.Combine(stock, layer);
            if (i == 0) File.Copy(full, path);
            else
            {
                string fullBelow = Export(dir, SeedStates[i - 1].Image, SeedStates[i - 1].Snapshot);
                Qemu.Img("create", "-q", "-f", "qcow2", "-b", full, "-F", "qcow2", path);
                Qemu.Img("rebase", "-b", fullBelow, "-F", "qcow2", path);
                Qemu.Img("rebase", "-u", "-b", SeedStates[i - 1].Layer, "-F", "qcow2", path);
            }
            stockTotal += new FileInfo(path).Length;
        }
        Qemu.AssertIdentical(Export(dir, "imageC.qcow2", null), Path.Combine(stock, "imageC.qcow2"));
        long ourTotal = ours.Layers.Sum(l => new FileInfo(l.Path).Length);
        Assert.True(ourTotal <= stockTotal, $"our layers {ourTotal} bytes, stock pipeline {stockTotal} bytes");
    }

    [SkippableFact]
    public void Bytes_read_are_zero_for_unchanged_states_and_bounded_otherwise()
    {
        Qemu.Require();
        using var dir = new TempDir("read");
        var b = new ImageBuilder(dir, seed: 5);
        string a = b.Create("imageA.qcow2", "32M");
        b.Scatter(a, 32 << 20, 10, 1 << 20);
        b.Snapshot(a, "sn0");                     // current == sn0
        string c = b.Create("imageC.qcow2", "32M", backing: "imageA.qcow2");
        b.Snapshot(c, "sn0");                     // sn0 == imageA's current
        b.Scatter(c, 32 << 20, 6, 1 << 20);

        var result = LinearizeOperation.Run(new LinearizeRequest { TopImage = c, OutputFolder = dir["out"] });
        var byName = result.Layers.ToDictionary(l => l.Layer.FileName);
        Assert.Equal(0, byName["imageA.qcow2"].Stats!.BytesRead);
        Assert.Equal(0, byName["imageC_sn0.qcow2"].Stats!.BytesRead);
        Assert.Equal(0, byName["imageA.qcow2"].Stats!.DataClusters);

        using var set = new ImageSet();
        long Allocated(DiskView v)
        {
            long total = 0;
            for (long off = 0; off < v.Size;)
            {
                var e = v.GetExtent(off, v.Size - off);
                if (!e.ReadsAsZero) total += e.Length;
                off += e.Length;
            }
            return total;
        }
        long bound = Allocated(set.View(c)) + Allocated(set.View(c, "sn0"));
        long read = byName["imageC.qcow2"].Stats!.BytesRead;
        Assert.True(read > 0 && read <= bound, $"read {read}, allocated data of both states {bound}");

        // chain.json records the layers, not the work done: how much was read depends on how the diff reads.
        Assert.DoesNotContain("bytesRead", File.ReadAllText(result.ChainJsonPath));
    }

    [SkippableFact]
    public void Linearizing_twice_gives_identical_layers()
    {
        Qemu.Require();
        using var dir = new TempDir("twice");
        string top = new ImageBuilder(dir, seed: 12).SeedChain("16M");
        var one = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = dir["one"] });
        var two = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = Path.Combine(dir["two"], "nested") });
        Assert.Equal(one.Layers.Select(l => l.Sha256), two.Layers.Select(l => l.Sha256));
        foreach (var (x, y) in one.Layers.Zip(two.Layers))
            Assert.Equal(FileHash.Sha256(x.Path), FileHash.Sha256(y.Path));
        Assert.Equal(File.ReadAllText(one.ChainJsonPath), File.ReadAllText(two.ChainJsonPath));
    }

    [SkippableFact]
    public void Snapshot_filter_folds_skipped_states_into_the_next_layer()
    {
        Qemu.Require();
        using var dir = new TempDir("filter");
        string top = new ImageBuilder(dir, seed: 31).SeedChain("16M");
        var result = LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = dir["out"], Snapshots = ["sn1"] });
        Assert.Equal(["imageA.qcow2", "imageB_sn1.qcow2", "imageB.qcow2", "imageC.qcow2"], result.Layers.Select(l => l.Layer.FileName));
        Qemu.AssertIdentical(Export(dir, "imageB.qcow2", "sn1"), Path.Combine(dir["out"], "imageB_sn1.qcow2"));
        Qemu.AssertIdentical(dir["imageC.qcow2"], Path.Combine(dir["out"], "imageC.qcow2"));
    }

    [SkippableFact]
    public void Snapshot_filter_names_snapshots_with_qemus_rule_a_bare_value_is_an_id_first()
    {
        Qemu.Require();
        using var dir = new TempDir("filter-rule");
        var builder = new ImageBuilder(dir, seed: 5);
        string image = builder.Create("disk.qcow2", "4M");
        builder.WriteRandom(image, 0, 1 << 20);
        builder.Snapshot(image, "x");   // id 1
        builder.WriteRandom(image, 1 << 20, 1 << 20);
        builder.Snapshot(image, "1");   // id 2, named like the other's id
        Assert.Equal(["disk_x.qcow2", "disk.qcow2"], Planned(["1"]));
        Assert.Equal(["disk_x.qcow2", "disk.qcow2"], Planned(["snapshot.id=1"]));
        Assert.Equal(["disk_1.qcow2", "disk.qcow2"], Planned(["snapshot.name=1"]));
        Assert.Equal(["disk_x.qcow2", "disk.qcow2"], Planned(["x"]));

        IEnumerable<string> Planned(string[] snapshots) =>
            LinearizeOperation.Plan(new LinearizeRequest { TopImage = image, OutputFolder = dir["out"], Snapshots = snapshots }).Layers.Select(l => l.FileName);
    }

    [SkippableFact]
    public void Errors_name_the_problem_and_leave_no_output()
    {
        Qemu.Require();
        using var dir = new TempDir("err");
        string top = new ImageBuilder(dir, seed: 1).SeedChain("8M");

        var missingSnap = Assert.Throws<QcowException>(() => LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = dir["o1"], Snapshots = ["nosuch"] }));
        Assert.Contains("nosuch", missingSnap.Message);
        Assert.Contains("imageB.qcow2:sn1", missingSnap.Message);
        Assert.False(Directory.Exists(dir["o1"]));

        var clash = Assert.Throws<QcowException>(() => LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = dir.Path }));
        Assert.Contains("never modified", clash.Message);

        var cli = QcowProcess.Run("linearize", "--snapshots", "nosuch", top, dir["o2"]);
        Assert.NotEqual(0, cli.ExitCode);
        Assert.StartsWith("qcow: ", cli.StdErr);
        Assert.Single(cli.StdErr.TrimEnd().Split('\n'));

        // A snapshot name is image content: it must not steer a layer out of OUTDIR.
        string evil = new ImageBuilder(dir, seed: 2).Create("evil.qcow2", "4M");
        Qemu.Img("snapshot", "-c", "../../escaped", evil);
        var escape = Assert.Throws<QcowException>(() => LinearizeOperation.Run(new LinearizeRequest { TopImage = evil, OutputFolder = dir["o4"] }));
        Assert.Contains("../../escaped", escape.Message);
        Assert.False(Directory.Exists(dir["o4"]));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(dir.Path)!, "*escaped*"));

        File.Move(dir["imageB.qcow2"], dir["moved.qcow2"]);
        var missing = Assert.Throws<QcowException>(() => LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = dir["o3"] }));
        Assert.Contains("imageB.qcow2", missing.Message);
        Assert.Contains("not found", missing.Message);
        Assert.Contains("chain:", missing.Message);
        Assert.False(Directory.Exists(dir["o3"]));
    }
}
