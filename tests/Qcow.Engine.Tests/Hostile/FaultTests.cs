using Qcow.Engine.Operations;
using Qcow.Testing;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// Faults: sources are never modified (hashed around every operation, failed ones too); kill -9 during
/// <c>qcow linearize</c> leaves no incomplete file under a final name and the rerun is correct; a full disk gives a
/// clear error, removes the temporary file and keeps the old output; concurrent writers never leave a mixed file.
/// </summary>
public sealed class FaultTests
{
    private const string TempMarker = ".qcow-tmp-";

    [SkippableFact]
    public void Sources_are_never_modified_by_any_operation_including_failed_ones()
    {
        Qemu.Require();
        using var dir = new TempDir("sources-");
        string top = new ImageBuilder(dir, seed: 51).SeedChain("8M");
        var sources = Directory.GetFiles(dir.Path, "*.qcow2");
        var before = sources.ToDictionary(f => f, FileHash.Sha256);
        string a = dir["imageA.qcow2"], b = dir["imageB.qcow2"];
        string[][] runs =
        [
            ["info", "--backing-chain", top], ["info", "--output=json", b], ["check", top], ["check", b],
            ["map", "--output=json", top], ["map", "-l", "sn0", b], ["compare", top, b], ["compare", "-s", a, b],
            ["convert", top, dir["out/full.qcow2"]], ["convert", "-O", "raw", "-l", "sn1", b, dir["out/sn1.raw"]],
            ["convert", "-c", "-o", "compression_type=zstd", b, dir["out/c.qcow2"]],
            ["convert", "-B", "imageA.qcow2", "-d", "base_image=imageA.qcow2", b, dir["out/d.qcow2"]],
            ["linearize", top, dir["out/linear"]],
            // Failures: each must leave the sources as they were.
            ["convert", top, top], ["convert", top, b], ["convert", "-l", "no-such-snapshot", b, dir["out/x.qcow2"]],
            ["convert", "-o", "cluster_size=3", top, dir["out/y.qcow2"]], ["linearize", "--snapshots", "nope", top, dir["out/l2"]],
            ["linearize", top, dir.Path], ["map", "-l", "nope", top], ["compare", top, dir["missing.qcow2"]],
        ];
        foreach (var args in runs)
        {
            QcowProcess.Run(args);
            foreach (var (file, hash) in before)
                Assert.True(FileHash.Sha256(file) == hash, $"qcow {string.Join(' ', args)} modified {file}");
        }
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Kill_9_during_linearize_leaves_no_incomplete_output_and_the_rerun_is_correct()
    {
        Qemu.Require();
        using var dir = new TempDir("kill-");
        string top = BigChain(dir);
        string reference = dir["reference"];
        LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = reference });
        var expected = Hashes(reference);
        string outDir = dir["out"];
        Directory.CreateDirectory(outDir);

        // Layers: base_s1, base, top (base is written before base_s1, whose comparison is the larger, but renamed
        // after it). Each run is held at a step by the test hook and killed there with SIGKILL (no handler, no
        // cleanup); what exists under a final name then is known exactly (complete layers of earlier runs stay
        // until a rename replaces them).
        string[] all = ["base.qcow2", "base_s1.qcow2", "top.qcow2"];
        (string Step, string[] Final)[] kills =
        [
            ("written:base.qcow2", []),
            ("committed:base_s1.qcow2", ["base_s1.qcow2"]),
            ("chain-json", all),
            // Last, a kill with the top layer's temporary present, so the rerun must remove a stale temporary.
            ("written:top.qcow2", all),
        ];
        foreach (var (step, final) in kills)
        {
            using var p = QcowProcess.StartPausedAt(step, "linearize", top, outDir);
            p.Kill();
            Assert.True(p.WaitForExit(30_000), "qcow linearize did not exit after SIGKILL");
            var left = Directory.GetFiles(outDir).Select(Path.GetFileName).ToList();
            var finals = left.Where(f => !f!.Contains(TempMarker, StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(final, finals);
            foreach (var file in finals)
                Assert.True(expected[file!] == FileHash.Sha256(Path.Combine(outDir, file!)), $"{file} is incomplete after kill -9 at {step}");
            if (step.StartsWith("written:", StringComparison.Ordinal))
                Assert.Contains(left, f => f!.StartsWith("." + step["written:".Length..] + TempMarker, StringComparison.Ordinal));
        }

        var rerun = QcowProcess.Run(["linearize", top, outDir]);
        Assert.True(rerun.ExitCode == 0, rerun.StdErr);
        Assert.Empty(Directory.GetFiles(outDir, $"*{TempMarker}*"));
        Assert.Equal(expected.OrderBy(e => e.Key), Hashes(outDir).OrderBy(e => e.Key));
    }

    [SkippableFact]
    public void Disk_full_gives_a_clear_error_removes_the_temporary_file_and_keeps_the_old_output()
    {
        Qemu.Require();
        using var dir = new TempDir("full-");
        string full = dir["full"];
        Directory.CreateDirectory(full);
        var mount = Qemu.Run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", full], Enumerable.Range(0, 256).ToArray());
        Skip.If(mount.ExitCode != 0, $"cannot mount a 1 MiB tmpfs (needs root): {mount.StdErr.Trim()}");
        try
        {
            string source = dir["source.qcow2"];
            Qemu.Img("create", "-q", "-f", "qcow2", source, "8M");
            new ImageBuilder(dir, seed: 52).WriteRandom(source, 0, 4 << 20);
            string output = Path.Combine(full, "out.qcow2");
            Qemu.Img("create", "-q", "-f", "qcow2", output, "1M");
            string oldHash = FileHash.Sha256(output);

            var r = QcowProcess.Run(["convert", source, output]);
            MalformedImageTests.AssertCliFails(r, output);
            Assert.Contains("No space left on device", r.StdErr, StringComparison.Ordinal);
            AssertOnlyOldOutput(full, output, oldHash);

            // The engine API: one QcowException naming the output.
            var e = Assert.Throws<QcowException>(() => ConvertOperation.Run(new ConvertRequest { Source = source, Output = output }));
            Assert.Contains(output, e.Message, StringComparison.Ordinal);
            AssertOnlyOldOutput(full, output, oldHash);

            var l = QcowProcess.Run(["linearize", source, full]);
            Assert.NotEqual(0, l.ExitCode);
            Assert.Contains("No space left on device", l.StdErr, StringComparison.Ordinal);
            AssertOnlyOldOutput(full, output, oldHash);
        }
        finally
        {
            Qemu.Run("umount", [full], Enumerable.Range(0, 256).ToArray());
        }
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Two_concurrent_writers_of_the_same_output_never_leave_a_mixed_file()
    {
        Qemu.Require();
        using var dir = new TempDir("concurrent-");
        var b = new ImageBuilder(dir, seed: 53);
        string one = b.Create("one.qcow2", "64M"), two = b.Create("two.qcow2", "64M");
        b.WriteRandom(one, 0, 24 << 20);
        b.WriteRandom(two, 0, 24 << 20);
        string output = dir["out/same.qcow2"];
        for (int round = 0; round < 3; round++)
        {
            using var p1 = QcowProcess.Start("convert", one, output);
            using var p2 = QcowProcess.Start("convert", two, output);
            Assert.True(p1.WaitForExit(120_000) && p2.WaitForExit(120_000));
            // Both succeed here (each renames a complete file of its own); a failure would have to be a clean one.
            Assert.True(p1.ExitCode == 0 || p2.ExitCode == 0, "both writers failed");
            Qemu.AssertClean(output);
            Assert.True(Qemu.Identical(one, output) || Qemu.Identical(two, output), "the output is neither source: a mixed file");
            Assert.Empty(Directory.GetFiles(dir["out"], $"*{TempMarker}*"));
        }

        string top = new ImageBuilder(dir, seed: 54).SeedChain("16M");
        string reference = dir["reference"];
        LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = reference });
        var expected = Hashes(reference);
        string outDir = dir["linear"];
        using (var l1 = QcowProcess.Start("linearize", top, outDir))
        using (var l2 = QcowProcess.Start("linearize", top, outDir))
        {
            Assert.True(l1.WaitForExit(120_000) && l2.WaitForExit(120_000));
            Assert.True(l1.ExitCode == 0 && l2.ExitCode == 0, $"linearize exit codes {l1.ExitCode}, {l2.ExitCode}");
        }
        Assert.Equal(expected.OrderBy(e => e.Key), Hashes(outDir).OrderBy(e => e.Key));
    }

    /// <summary>A chain big enough that linearize takes a good part of a second: 96 MiB of random data over three states.</summary>
    private static string BigChain(TempDir dir)
    {
        var b = new ImageBuilder(dir, seed: 55);
        string baseImage = b.Create("base.qcow2", "256M");
        b.WriteRandom(baseImage, 0, 48 << 20);
        b.Snapshot(baseImage, "s1");
        b.WriteRandom(baseImage, 64 << 20, 24 << 20);
        string top = b.Create("top.qcow2", "256M", backing: "base.qcow2");
        b.WriteRandom(top, 128 << 20, 24 << 20);
        return top;
    }

    /// <summary>SHA-256 of every file in <paramref name="folder"/>, by file name.</summary>
    private static Dictionary<string, string> Hashes(string folder) =>
        Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), FileHash.Sha256);

    private static void AssertOnlyOldOutput(string folder, string output, string oldHash)
    {
        Assert.Equal([output], Directory.GetFiles(folder));
        Assert.Equal(oldHash, FileHash.Sha256(output));
    }
}
