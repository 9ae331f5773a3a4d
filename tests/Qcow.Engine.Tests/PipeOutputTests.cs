using System.Diagnostics;
using System.Security.Cryptography;
using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Tests;

/// <summary>
/// <c>qcow convert ... -</c>: the image goes to standard output front to back, never seeking, byte-identical to the file
/// the same command writes; what arrives through a pipe passes qemu-img check and compare. A terminal is refused, and a
/// reader that goes away is one error line.
/// </summary>
public class PipeOutputTests
{
    private static string Dll => QcowProcess.Dll;

    /// <summary>Arguments (source included, relative to the test folder) and the image whose content the output must have.</summary>
    public static TheoryData<string, string> Cases => new()
    {
        { "img.qcow2", "img.qcow2" },
        { "-l s1 img.qcow2", "s1.qcow2" },
        { "-s snapshot.name=s1 -o cluster_size=512 img.qcow2", "s1.qcow2" },
        { "-o cluster_size=2M img.qcow2", "img.qcow2" },
        { "-o compat=0.10 img.qcow2", "img.qcow2" },
        { "-c img.qcow2", "img.qcow2" },
        { "-c -o compression_type=zstd,cluster_size=4k img.qcow2", "img.qcow2" },
        { "-c -o compat=0.10 -l s1 img.qcow2", "s1.qcow2" },
        { "-O raw -l s1 img.qcow2", "s1.qcow2" },
        { "-d snapshot=s1 -B base.qcow2 img.qcow2", "img.qcow2" },
        { "-d snapshot=s1 -B {dir}/base.qcow2 -o compat=0.10 img.qcow2", "img.qcow2" },
        { "-c -o compression_type=zstd -d snapshot=s1 -B base.qcow2 -F qcow2 img.qcow2", "img.qcow2" },
        { "-c -B img.qcow2 ovl.qcow2", "ovl.qcow2" },
    };

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void Piped_output_is_the_file_output_byte_for_byte_and_qemu_img_accepts_it(string args, string expected)
    {
        Qemu.Require();
        using var dir = Fixture();
        string[] argv = args.Replace("{dir}", dir.Path).Split(' ');

        var file = Cli(dir, ["convert", .. argv[..^1], argv[^1], "file.out"]);
        Assert.True(file.ExitCode == 0, file.StdErr);
        byte[] expectedBytes = File.ReadAllBytes(dir["file.out"]);

        var (exit, piped, err) = RunToPipe(dir, ["convert", .. argv, "-"]);
        Assert.True(exit == 0, err);
        Assert.Equal("", err);
        Assert.Equal(expectedBytes, piped);

        // Standard output sent to a file (seekable, but written the same way).
        var redirected = Qemu.Run("bash", ["-c", "out=$1; shift; exec \"$@\" > \"$out\"", "bash", dir["redirected.out"], "dotnet", Dll, "convert", .. argv, "-"],
            [0], dir.Path);
        Assert.Equal("", redirected.StdErr);
        Assert.Equal(expectedBytes, File.ReadAllBytes(dir["redirected.out"]));

        string saved = dir["piped.out"];
        File.WriteAllBytes(saved, piped);
        bool raw = args.Contains("-O raw", StringComparison.Ordinal);
        if (raw)
        {
            Qemu.Img("compare", "-f", "qcow2", "-F", "raw", dir[expected], saved);
            return;
        }
        Qemu.AssertClean(saved);
        Qemu.AssertIdentical(dir[expected], saved);
    }

    [SkippableFact]
    public void A_snapshot_piped_through_zstd_comes_back_as_the_file_output()
    {
        Qemu.Require();
        Skip.If(Which("zstd") is null, "zstd not installed (apt-get install -y zstd)");
        using var dir = Fixture();
        Assert.Equal(0, Cli(dir, ["convert", "-l", "s1", "img.qcow2", "file.qcow2"]).ExitCode);

        var r = Qemu.Run("bash", ["-c", "set -o pipefail; \"$@\" | zstd -q > a.qcow2.zst", "bash", "dotnet", Dll, "convert", "-l", "s1", "img.qcow2", "-"],
            [0], dir.Path);
        Assert.Equal("", r.StdErr);
        Qemu.Run("zstd", ["-d", "-q", "a.qcow2.zst", "-o", "a.qcow2"], [0], dir.Path);
        Assert.Equal(File.ReadAllBytes(dir["file.qcow2"]), File.ReadAllBytes(dir["a.qcow2"]));
        Qemu.AssertClean(dir["a.qcow2"]);
        Qemu.AssertIdentical(dir["s1.qcow2"], dir["a.qcow2"]);
    }

    [SkippableFact]
    public void A_reader_that_goes_away_is_one_error_line_and_a_non_zero_exit()
    {
        Qemu.Require();
        using var dir = Fixture();
        // The image is megabytes, far more than the pipe holds, so qcow is still writing when head exits.
        var r = Qemu.Run("bash", ["-c", "\"$@\" 2> err.txt | head -c 1000 > head.bin; echo ${PIPESTATUS[0]}", "bash", "dotnet", Dll, "convert", "img.qcow2", "-"],
            [0], dir.Path);
        Assert.NotEqual(0, int.Parse(r.StdOut.Trim()));
        Assert.Equal(1000, new FileInfo(dir["head.bin"]).Length);
        string[] lines = File.ReadAllLines(dir["err.txt"]);
        Assert.Equal(["qcow: standard output: cannot write output: Broken pipe"], lines);
    }

    [SkippableFact]
    public void A_terminal_is_refused_before_anything_is_written()
    {
        Qemu.Require();
        Skip.If(Which("script") is null, "script (util-linux) not installed: no pseudo-terminal to test with");
        using var dir = Fixture();
        // script runs the command with a pseudo-terminal as its standard output.
        var r = Qemu.Run("script", ["-qec", $"dotnet {Dll} convert img.qcow2 -", "/dev/null"], [0, 1], dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("qcow: standard output: is a terminal; send the image to a pipe or a file", r.StdOut);
        Assert.DoesNotContain("QFI", r.StdOut);
    }

    [SkippableFact]
    public void A_stream_that_cannot_seek_gets_the_file_bytes_and_their_hash()
    {
        Qemu.Require();
        using var dir = Fixture();
        foreach (var (options, compress, format) in new[]
                 {
                     ("", false, "qcow2"), ("compression_type=zlib", true, "qcow2"), ("compression_type=zstd,cluster_size=2M", true, "qcow2"),
                     ("compat=0.10", false, "qcow2"), ("", false, "raw"),
                 })
        {
            var wo = WriteOptions.Default.With(options) with { Compress = compress };
            ConvertRequest Request(string output, Stream? stream) => new()
            {
                Source = dir["img.qcow2"], Output = output, OutputStream = stream, Options = wo, OutputFormat = format, ComputeSha256 = true,
            };
            var fileStats = ConvertOperation.Run(Request(dir["file.out"], null));
            using var sink = new AppendOnlyStream();
            var streamStats = ConvertOperation.Run(Request("test stream", sink));
            byte[] bytes = sink.Bytes.ToArray();
            Assert.Equal(File.ReadAllBytes(dir["file.out"]), bytes);
            Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), streamStats.Sha256);
            Assert.Equal(fileStats.Sha256, streamStats.Sha256);
            Assert.Equal(bytes.Length, streamStats.FileSize);
            Assert.Equal(fileStats.DataClusters, streamStats.DataClusters);
            Assert.Equal(fileStats.ZeroClusters, streamStats.ZeroClusters);
        }
    }

    [SkippableFact]
    public void A_diff_too_scattered_to_plan_for_a_stream_is_refused_before_any_byte()
    {
        Qemu.Require();
        using var dir = new TempDir("pipe-scatter");
        var b = new ImageBuilder(dir, seed: 91);
        string img = b.Create("img.qcow2", "8M");
        for (int i = 0; i < 6; i++) b.WriteRandom(img, i * (1L << 20), 4096);
        using var sink = new AppendOnlyStream();
        var request = new ConvertRequest { Source = img, Output = "test stream", OutputStream = sink };
        var e = Assert.Throws<QcowException>(() => ConvertOperation.Run(request, null, default, maxStreamRuns: 5));
        Assert.Equal("test stream: the clusters to write are scattered over more than 5 runs, too many to plan a stream in bounded memory; write to a file instead",
            e.Message);
        Assert.Equal(0, sink.Bytes.Length);
        // Within the bound the same stream is written.
        ConvertOperation.Run(request, null, default, maxStreamRuns: 6);
        Assert.NotEqual(0, sink.Bytes.Length);
    }

    [SkippableFact]
    public void A_stream_that_fails_part_way_is_one_error_naming_the_output()
    {
        Qemu.Require();
        using var dir = Fixture();
        // The qcow2 writer's own cancellation is quiet; a cancellation thrown by its stream must still fail it.
        foreach (var (format, failure) in new (string, Exception)[]
                 {
                     ("qcow2", new IOException("upload refused")), ("qcow2", new OperationCanceledException("upload cancelled")),
                     ("raw", new IOException("upload refused")),
                 })
        {
            using var sink = new AppendOnlyStream { FailAfter = 1 << 20, Failure = failure };
            var request = new ConvertRequest { Source = dir["img.qcow2"], Output = "test stream", OutputStream = sink, OutputFormat = format };
            var e = Assert.Throws<QcowException>(() => ConvertOperation.Run(request));
            Assert.StartsWith("test stream: cannot write output: upload ", e.Message);
            Assert.Equal(1 << 20, sink.Bytes.Length);
        }
    }

    /// <summary>
    /// img.qcow2 (16 MiB, 4 KiB clusters: scattered data, zeros, discards, compressed clusters) with snapshot s1 taken
    /// halfway; s1.qcow2, qemu-img's export of s1, and base.qcow2, a copy of it (the diff base); ovl.qcow2, an overlay
    /// on img.qcow2 with a few writes.
    /// </summary>
    private static TempDir Fixture()
    {
        var dir = new TempDir("pipe");
        var b = new ImageBuilder(dir, seed: 90);
        string img = b.Create("img.qcow2", "16M", "cluster_size=4096");
        b.Scatter(img, 16 << 20, 14, 2 << 20);
        b.WriteRandom(img, 3 << 20, 256 << 10, compressed: true);
        b.Snapshot(img, "s1");
        b.Scatter(img, 16 << 20, 10, 1 << 20);
        b.WriteZeros(img, 6 << 20, 512 << 10);
        b.WriteRandom(img, (16 << 20) - 3000, 3000);
        Qemu.Export(img, "s1", dir["s1.qcow2"]);
        File.Copy(dir["s1.qcow2"], dir["base.qcow2"]);
        string ovl = b.Create("ovl.qcow2", "16M", "cluster_size=4096", backing: "img.qcow2");
        b.Scatter(ovl, 16 << 20, 6, 1 << 20);
        return dir;
    }

    private static ProcessResult Cli(TempDir dir, string[] args) =>
        QcowProcess.Run(args, workingDirectory: dir.Path);

    /// <summary>Runs qcow with standard output to a pipe read here, as bytes.</summary>
    private static (int ExitCode, byte[] StdOut, string StdErr) RunToPipe(TempDir dir, string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = dir.Path,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        using var bytes = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(bytes);
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"qcow {string.Join(' ', args)} did not exit");
        }
        return (p.ExitCode, bytes.ToArray(), err.Result);
    }

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    /// <summary>
    /// A stream that only appends, like a pipe: seeking, reading and asking its length or position fail. With
    /// <see cref="Failure"/>, a write that would take it past <see cref="FailAfter"/> bytes throws that instead.
    /// </summary>
    internal sealed class AppendOnlyStream : Stream
    {
        public MemoryStream Bytes { get; } = new();
        public long FailAfter { get; init; } = long.MaxValue;
        public Exception? Failure { get; init; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Failure is not null && Bytes.Length + buffer.Length > FailAfter)
            {
                Bytes.Write(buffer[..(int)(FailAfter - Bytes.Length)]);
                throw Failure;
            }
            Bytes.Write(buffer);
        }
    }
}
