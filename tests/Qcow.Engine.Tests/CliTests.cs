using System.Text.Json;
using Qcow.Testing;

namespace Qcow.Engine.Tests;

/// <summary>The qcow command line as a user meets it: qemu-img's spelling, exit codes and output.</summary>
public class CliTests
{
    [SkippableFact]
    public void Check_exit_codes_match_qemu_img_for_clean_leaky_and_corrupt_images()
    {
        Qemu.Require();
        using var dir = new TempDir("chk");
        var b = new ImageBuilder(dir, seed: 4);
        string clean = b.Create("clean.qcow2", "4M", "cluster_size=4096");
        b.WriteRandom(clean, 0, 64 << 10);

        // A leak: one more cluster at the end of the file, with a refcount but no reference.
        string leak = dir["leak.qcow2"];
        File.Copy(clean, leak);
        long leakedCluster = new FileInfo(leak).Length / 4096;
        using (var f = File.Open(leak, FileMode.Open))
        {
            f.SetLength((leakedCluster + 1) * 4096);
            SetRefcount(f, leakedCluster, 1);
        }

        // A corruption: a data cluster whose refcount is 0.
        string corrupt = dir["corrupt.qcow2"];
        File.Copy(clean, corrupt);
        long dataCluster;
        using (var img = Format.QcowImage.Open(corrupt))
            dataCluster = (long)img.Lookup(img.ActiveL1, 0).HostOffset / 4096;
        using (var f = File.Open(corrupt, FileMode.Open)) SetRefcount(f, dataCluster, 0);

        foreach (var (path, expected) in new[] { (clean, 0), (leak, 3), (corrupt, 2) })
        {
            int qemu = Qemu.ImgAllow([0, 1, 2, 3], "check", path).ExitCode;
            var ours = QcowProcess.Run("check", path);
            Assert.Equal(expected, qemu);
            Assert.True(expected == ours.ExitCode, $"{Path.GetFileName(path)}: qcow check exit {ours.ExitCode}\n{ours.StdOut}{ours.StdErr}");
            var json = JsonDocument.Parse(QcowProcess.Run("check", "--output=json", path).StdOut).RootElement;
            Assert.Equal(expected == 3 ? 1 : 0, json.TryGetProperty("leaks", out var l) ? l.GetInt32() : 0);
        }
    }

    /// <summary>Writes a 16-bit refcount through the image's refcount table.</summary>
    private static void SetRefcount(FileStream f, long cluster, ushort value)
    {
        var header = new byte[64];
        f.Position = 0;
        f.ReadExactly(header);
        long table = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(48));
        int cs = 1 << (int)System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(20));
        long perBlock = cs / 2;
        var entry = new byte[8];
        f.Position = table + cluster / perBlock * 8;
        f.ReadExactly(entry);
        long block = (long)System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(entry);
        Assert.NotEqual(0, block);
        f.Position = block + cluster % perBlock * 2;
        f.Write([(byte)(value >> 8), (byte)value]);
    }

    [SkippableFact]
    public void Info_agrees_with_qemu_img_and_lists_snapshots_like_snapshot_l()
    {
        Qemu.Require();
        using var dir = new TempDir("info");
        string top = new ImageBuilder(dir, seed: 6).SeedChain("8M");
        string b = dir["imageB.qcow2"];
        var ours = JsonDocument.Parse(QcowProcess.Run("info", "--output=json", b).StdOut).RootElement;
        var theirs = JsonDocument.Parse(Qemu.Img("info", "--output=json", b).StdOut).RootElement;
        foreach (var key in new[] { "virtual-size", "cluster-size", "actual-size" })
            Assert.Equal(theirs.GetProperty(key).GetInt64(), ours.GetProperty(key).GetInt64());
        foreach (var key in new[] { "format", "backing-filename", "backing-filename-format", "filename" })
            Assert.Equal(theirs.GetProperty(key).GetString(), ours.GetProperty(key).GetString());
        Assert.Equal(theirs.GetProperty("snapshots").EnumerateArray().Select(s => s.GetProperty("name").GetString()),
                     ours.GetProperty("snapshots").EnumerateArray().Select(s => s.GetProperty("name").GetString()));

        string table = Qemu.Img("snapshot", "-l", b).StdOut;
        string text = QcowProcess.Run("info", b).StdOut;
        Assert.Contains(table, text);

        var chain = JsonDocument.Parse(QcowProcess.Run("info", "--output=json", "--backing-chain", top).StdOut).RootElement;
        Assert.Equal(3, chain.GetArrayLength());
    }

    [SkippableFact]
    public void Info_names_backing_files_as_qemu_img_does_relative_to_the_name_given()
    {
        Qemu.Require();
        using var dir = new TempDir("info-names");
        string x = dir["x"];
        Directory.CreateDirectory(Path.Combine(x, "sub"));
        Qemu.Run("qemu-img", ["create", "-q", "-f", "qcow2", "a.qcow2", "1M"], [0], x);
        Qemu.Run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", "b.qcow2"], [0], x);
        Qemu.Run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", "../b.qcow2", "-F", "qcow2", "sub/c.qcow2"], [0], x);
        Qemu.Run("qemu-img", ["create", "-q", "-f", "qcow2", "-b", dir["x/a.qcow2"], "-F", "qcow2", "d.qcow2"], [0], x);
        // c.qcow2's backing file is outside its folder: qcow wants that allowed (a deliberate difference), qemu-img does not.
        string[] allowX = ["--allow-backing", x];
        foreach (var (cwd, image, allow) in new[]
        {
            (x, "b.qcow2", Array.Empty<string>()), (dir.Path, "x/b.qcow2", []), (dir.Path, dir["x/b.qcow2"], []), (x, "./b.qcow2", []),
            (dir.Path, "x/sub/c.qcow2", allowX), (Path.Combine(x, "sub"), "c.qcow2", allowX), (x, "d.qcow2", []),
        })
        {
            foreach (string[] options in new[] { Array.Empty<string>(), ["--backing-chain"] })
            {
                string theirs = Qemu.Run("qemu-img", ["info", .. options, image], [0], cwd).StdOut;
                Assert.Equal(theirs, QcowProcess.Run(["info", .. options, .. allow, image], workingDirectory: cwd).StdOut);
                var theirsJson = JsonDocument.Parse(Qemu.Run("qemu-img", ["info", "--output=json", .. options, image], [0], cwd).StdOut).RootElement;
                var oursJson = JsonDocument.Parse(QcowProcess.Run(["info", "--output=json", .. options, .. allow, image], workingDirectory: cwd).StdOut).RootElement;
                var names = (JsonElement e) => (e.ValueKind == JsonValueKind.Array ? e.EnumerateArray().ToList() : [e])
                    .Select(i => (i.GetProperty("filename").GetString(),
                        i.TryGetProperty("full-backing-filename", out var f) ? f.GetString() : null)).ToList();
                Assert.Equal(names(theirsJson), names(oursJson));
            }
        }
    }

    [SkippableFact]
    public void Compare_exit_codes_match_qemu_img()
    {
        Qemu.Require();
        using var dir = new TempDir("cmp");
        var b = new ImageBuilder(dir, seed: 9);
        string x = b.Create("x.qcow2", "4M");
        b.WriteRandom(x, 0, 1 << 20);
        string y = dir["y.qcow2"];
        Qemu.Img("convert", "-O", "qcow2", x, y);
        b.WriteZeros(y, 2 << 20, 1 << 20);            // zero vs unallocated: equal unless strict
        string z = dir["z.qcow2"];
        File.Copy(y, z);
        b.WritePattern(z, 3 << 20, 512, 0x5a);
        foreach (var (p, q, strict) in new[] { (x, y, false), (x, y, true), (x, z, false) })
        {
            var args = strict ? new[] { "compare", "-s", p, q } : new[] { "compare", p, q };
            int qemu = Qemu.ImgAllow([0, 1], args).ExitCode;
            Assert.Equal(qemu, QcowProcess.Run(args).ExitCode);
        }
        Assert.Equal(2, QcowProcess.Run("compare", x, dir["missing.qcow2"]).ExitCode);
    }

    [SkippableFact]
    public void Errors_are_one_line_with_the_file_and_no_stack_trace()
    {
        Qemu.Require();
        using var dir = new TempDir("cli");
        var b = new ImageBuilder(dir, seed: 10);
        // A backing chain with a cycle: a -> b -> a.
        b.Create("a.qcow2", "4M");
        b.Create("b.qcow2", "4M", backing: "a.qcow2");
        Qemu.Img("rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", dir["a.qcow2"]);
        foreach (var args in new[]
        {
            new[] { "info", "--backing-chain", dir["b.qcow2"] },
            new[] { "convert", dir["nope.qcow2"], dir["out.qcow2"] },
            new[] { "convert", "-l", "nosnap", dir["b.qcow2"], dir["out.qcow2"] },
            new[] { "map", dir["b.qcow2"] },
        })
        {
            var r = QcowProcess.Run(args);
            Assert.NotEqual(0, r.ExitCode);
            Assert.StartsWith("qcow: ", r.StdErr);
            Assert.DoesNotContain("   at ", r.StdErr);
            Assert.Single(r.StdErr.TrimEnd().Split('\n'));
        }
        Assert.Contains("cycle", QcowProcess.Run("info", "--backing-chain", dir["b.qcow2"]).StdErr);
        Assert.False(File.Exists(dir["out.qcow2"]));
    }

    [Fact]
    public void Help_lists_every_command()
    {
        var r = QcowProcess.Run("--help");
        Assert.Equal(0, r.ExitCode);
        foreach (var verb in new[] { "info", "check", "map", "compare", "convert", "linearize" })
            Assert.Contains(verb, r.StdOut);
        var convert = QcowProcess.Run("convert", "--help").StdOut;
        Assert.Contains("-d", convert);
        Assert.Contains("snapshot", convert);
    }
}
