using System.Text.Json;
using Qcow.Testing;
using static Qcow.Engine.Tests.Hostile.HostileImages;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// Damaged images as a user meets them through the CLI: the corrupt bit is read read-only with a warning naming the
/// file; one damaged snapshot entry hides nothing else; compare's size warning comes when qemu-img's does.
/// </summary>
public sealed class DamagedImageTests(HostileImages bases) : IClassFixture<HostileImages>
{
    [SkippableFact]
    public void An_image_with_the_corrupt_bit_is_read_read_only_with_a_warning_naming_it()
    {
        Qemu.Require();
        using var dir = new TempDir("corrupt-");
        string path = bases.CopyTo("v3", dir["corrupt.qcow2"]);
        Put(path, 72, 8, 2);

        var info = QcowProcess.Run("info", path);
        Assert.Equal(0, info.ExitCode);
        Assert.Contains("    corrupt: true\n", info.StdOut, StringComparison.Ordinal);
        AssertWarns(info, path);
        var json = JsonDocument.Parse(QcowProcess.Run("info", "--output=json", path).StdOut).RootElement;
        Assert.True(json.GetProperty("format-specific").GetProperty("data").GetProperty("corrupt").GetBoolean());

        var check = QcowProcess.Run("check", path);
        Assert.Equal(Qemu.ImgAllow([0, 1, 2, 3], "check", path).ExitCode, check.ExitCode);
        AssertWarns(check, path);

        string ours = dir["ours.raw"], theirs = dir["qemu.raw"];
        var convert = QcowProcess.Run("convert", "-O", "raw", path, ours);
        Assert.True(convert.ExitCode == 0, convert.StdErr);
        AssertWarns(convert, path);
        Qemu.Img("convert", "-U", "-O", "raw", path, theirs);
        Assert.True(File.ReadAllBytes(theirs).AsSpan().SequenceEqual(File.ReadAllBytes(ours)), "convert reads other bytes than qemu-img");
        Assert.Equal(0, QcowProcess.Run("compare", path, theirs).ExitCode);
        Assert.Equal(0, QcowProcess.Run("map", path).ExitCode);
        Assert.Equal(0, QcowProcess.Run("linearize", path, dir["chain"]).ExitCode);
    }

    [SkippableFact]
    public void One_damaged_snapshot_entry_is_listed_counted_and_refused_only_when_used()
    {
        Qemu.Require();
        using var dir = new TempDir("damaged-snapshot-");
        string path = bases.CopyTo("v3", dir["snap.qcow2"]);
        Qemu.Img("snapshot", "-c", "s2", path);
        var layout = Layout.Of(path);
        // s1's L1 table offset, off its cluster boundary (iotest 080's "Invalid snapshot L1 table").
        Put(path, layout.SnapshotEntries[0], 8, layout.U64(layout.SnapshotEntries[0]) + 512);

        var info = QcowProcess.Run("info", path);
        Assert.Equal(0, info.ExitCode);
        Assert.Contains("Damaged snapshot table entry 0 (id 1, 's1'): l1_table_offset:", info.StdOut, StringComparison.Ordinal);
        var snaps = JsonDocument.Parse(QcowProcess.Run("info", "--output=json", path).StdOut).RootElement.GetProperty("snapshots");
        Assert.StartsWith("l1_table_offset:", snaps[0].GetProperty("damaged").GetString(), StringComparison.Ordinal);
        Assert.False(snaps[1].TryGetProperty("damaged", out _));

        // Counted by check as qemu-img check counts it: one corruption (exit 2).
        var qemuCheck = Qemu.ImgAllow([0, 1, 2, 3], "check", "--output=json", path);
        var ourCheck = QcowProcess.Run("check", "--output=json", path);
        Assert.Equal(2, qemuCheck.ExitCode);
        Assert.Equal(qemuCheck.ExitCode, ourCheck.ExitCode);
        Assert.Equal(JsonDocument.Parse(qemuCheck.StdOut).RootElement.GetProperty("corruptions").GetInt64(),
                     JsonDocument.Parse(ourCheck.StdOut).RootElement.GetProperty("corruptions").GetInt64());

        // The current state and the intact snapshot read as qemu reads them; the damaged one is refused, named.
        foreach (var state in new[] { null, "s2" })
        {
            string ours = dir[$"ours-{state}.raw"], theirs = dir[$"qemu-{state}.raw"];
            string[] sel = state is null ? [] : ["-l", state];
            Assert.Equal(0, QcowProcess.Run(["convert", .. sel, "-O", "raw", path, ours]).ExitCode);
            Qemu.Img(["convert", "-U", .. sel, "-O", "raw", path, theirs]);
            Assert.True(File.ReadAllBytes(theirs).AsSpan().SequenceEqual(File.ReadAllBytes(ours)), $"{state ?? "current"} differs");
        }
        var refused = QcowProcess.Run("convert", "-l", "s1", "-O", "raw", path, dir["s1.raw"]);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("snapshot table entry 0 ('s1', id 1) l1_table_offset", refused.StdErr, StringComparison.Ordinal);
        Assert.False(File.Exists(dir["s1.raw"]));

        // linearize names it, unless --snapshots leaves it out.
        var chain = QcowProcess.Run("linearize", path, dir["all"]);
        Assert.NotEqual(0, chain.ExitCode);
        Assert.Contains("snapshot table entry 0 ('s1', id 1) l1_table_offset", chain.StdErr, StringComparison.Ordinal);
        Assert.Contains("--snapshots", chain.StdErr, StringComparison.Ordinal);
        var some = QcowProcess.Run("linearize", "--snapshots", "s2", path, dir["some"]);
        Assert.True(some.ExitCode == 0, some.StdErr);
        Qemu.AssertIdentical(dir["qemu-s2.raw"], Path.Combine(dir["some"], "snap_s2.qcow2"));
        Qemu.AssertIdentical(dir["qemu-.raw"], Path.Combine(dir["some"], "snap.qcow2"));
    }

    [SkippableFact]
    public void Compare_warns_of_a_size_mismatch_exactly_when_qemu_img_does()
    {
        Qemu.Require();
        using var dir = new TempDir("cmp-size-");
        var b = new ImageBuilder(dir, seed: 31);
        string small = b.Create("small.qcow2", "1M");
        b.WriteRandom(small, 0, 64 << 10);
        string sameThenZero = dir["same-then-zero.qcow2"];
        Qemu.Img("convert", "-O", "qcow2", small, sameThenZero);
        Qemu.Img("resize", sameThenZero, "2M");
        string sameThenData = dir["same-then-data.qcow2"];
        File.Copy(sameThenZero, sameThenData);
        b.WritePattern(sameThenData, 1536 << 10, 512, 0x5a);
        string differentThenZero = dir["different-then-zero.qcow2"];
        File.Copy(sameThenZero, differentThenZero);
        b.WritePattern(differentThenZero, 4096, 512, 0x5a);

        foreach (var other in new[] { sameThenZero, sameThenData, differentThenZero })
        {
            var qemu = Qemu.ImgAllow([0, 1], "compare", small, other);
            var ours = QcowProcess.Run("compare", small, other);
            Assert.Equal(qemu.ExitCode, ours.ExitCode);
            Assert.Equal(qemu.StdOut, ours.StdOut);
        }
    }

    private static void AssertWarns(ProcessResult r, string path)
    {
        var line = Assert.Single(r.StdErr.Split('\n'), l => l.Contains("corrupt bit", StringComparison.Ordinal));
        Assert.StartsWith("qcow: warning: ", line, StringComparison.Ordinal);
        Assert.Contains(path, line, StringComparison.Ordinal);
    }
}
