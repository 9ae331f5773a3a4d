using System.Security.Cryptography;
using Qcow.Engine.IO;
using FileHash = Qcow.Testing.FileHash;
using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Tests;

/// <summary>
/// Every Linux-only system call has a fallback (what other systems run), and <see cref="HostPlatform"/> turns them all
/// off at once: then each fallback is taken, and the output bytes stay the same.
/// </summary>
public class PlatformFallbackTests
{
    [Fact]
    public void Without_linux_calls_every_fallback_is_taken()
    {
        using var dir = new TempDir("fallback");
        // A sparse file: 4 KiB of data at 1 MiB in 4 MiB.
        string sparse = dir["sparse.raw"];
        using (var f = File.Create(sparse))
        {
            f.SetLength(4 << 20);
            f.Position = 1 << 20;
            f.Write(new byte[4096].Select((_, i) => (byte)(i | 1)).ToArray());
        }
        Directory.CreateDirectory(dir["elsewhere"]);
        File.Copy(sparse, dir["elsewhere/target.raw"]);
        File.CreateSymbolicLink(dir["link.raw"], dir["elsewhere/target.raw"]);

        using (HostPlatform.WithoutLinuxCalls())
        {
            Assert.False(HostPlatform.LinuxCalls);
            using var file = ImageFile.Open(sparse);
            // lseek SEEK_DATA/SEEK_HOLE: the whole range is one stored run.
            Assert.Equal([(0L, 4L << 20, false)], file.HostRuns(0, 4 << 20).ToList());
            // fstat st_blocks: unknown, so info reports the file's length.
            Assert.Null(file.AllocatedSize);
            Assert.Equal(4L << 20, InfoOperation.Run(new InfoRequest { Image = sparse }).Images.Single().ActualSize);
            // /proc/self/fd: not asked.
            using var link = ImageFile.Open(dir["link.raw"]);
            Assert.Null(link.OpenedRealPath);
            // O_DIRECT (and with it sync_file_range, which SequentialOutput only calls when it is on Linux): not used.
            using var handle = File.OpenHandle(dir["out.bin"], FileMode.CreateNew, FileAccess.ReadWrite);
            using var output = new SequentialOutput(handle, dir["out.bin"], sha256: false, directIo: true);
            Assert.False(output.DirectIo);
        }

        if (!OperatingSystem.IsLinux()) return;
        // With the calls on (Linux), the same questions get the kernel's answers: the switch is what changed.
        Assert.True(HostPlatform.LinuxCalls);
        using (var file = ImageFile.Open(sparse))
        {
            var runs = file.HostRuns(0, 4 << 20).ToList();
            Assert.Contains(runs, r => r.Hole);
            Assert.True(file.AllocatedSize < 4L << 20, $"allocated {file.AllocatedSize}");
        }
        using (var link = ImageFile.Open(dir["link.raw"]))
            Assert.Equal(dir["elsewhere/target.raw"], link.OpenedRealPath);
    }

    [Fact]
    public void The_switch_holds_only_for_the_flow_that_turned_it_off()
    {
        bool before = HostPlatform.LinuxCalls;
        bool other = true;
        using (HostPlatform.WithoutLinuxCalls())
        {
            // A thread started inside the scope inherits it; one outside it (the thread pool's own) does not.
            var inside = new Thread(() => other = HostPlatform.LinuxCalls);
            inside.Start();
            inside.Join();
            Assert.False(other);
            bool outside = false;
            using var done = new ManualResetEventSlim();
            ThreadPool.UnsafeQueueUserWorkItem(_ => { outside = HostPlatform.LinuxCalls; done.Set(); }, null);
            done.Wait();
            Assert.Equal(OperatingSystem.IsLinux(), outside);
        }
        Assert.Equal(before, HostPlatform.LinuxCalls);
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public void Output_writes_give_the_same_bytes_and_hash_with_or_without_linux_calls(bool sha256, bool directIo)
    {
        using var dir = new TempDir("fallback-write");
        // Over two 4 MiB chunks and a tail that is not a multiple of the direct I/O block size.
        var data = new byte[(9 << 20) + 1234];
        new Random(8).NextBytes(data);
        string Write(string name)
        {
            string path = dir[name];
            using var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
            using var output = new SequentialOutput(handle, path, sha256, directIo);
            output.Write(data.AsSpan(0, 100));
            output.WriteZeros(4000);
            output.Write(data.AsSpan(4100));
            // Unhashed outputs get their head patched in last (the header); hashed ones are final as written.
            if (!sha256) output.PatchHead(data.AsSpan(0, 4100));
            return output.Complete() ?? "";
        }
        if (sha256) Array.Clear(data, 100, 4000);
        string withCalls = Write("with.bin");
        string without;
        using (HostPlatform.WithoutLinuxCalls()) without = Write("without.bin");
        var expected = SHA256.HashData(data);
        Assert.Equal(expected, SHA256.HashData(File.ReadAllBytes(dir["with.bin"])));
        Assert.Equal(expected, SHA256.HashData(File.ReadAllBytes(dir["without.bin"])));
        Assert.Equal(withCalls, without);
        if (sha256) Assert.Equal(Convert.ToHexStringLower(expected), withCalls);
    }

    [SkippableFact]
    public void Linearize_and_convert_of_a_larger_chain_give_the_same_bytes_without_linux_calls()
    {
        Qemu.Require();
        using var dir = new TempDir("fallback-chain");
        var b = new ImageBuilder(dir, seed: 15);
        string top = b.SeedChain("48M"); // enough data for several 4 MiB output chunks per layer
        foreach (var (options, compress) in new[] { ("", false), ("compression_type=zlib", true), ("compat=0.10", false) })
        {
            var wo = WriteOptions.Default.With(options) with { Compress = compress };
            var with = Run(dir[$"with-{options}"], top, wo);
            Dictionary<string, string> without;
            using (HostPlatform.WithoutLinuxCalls()) without = Run(dir[$"without-{options}"], top, wo);
            Assert.Equal(with, without);
        }
    }

    private static Dictionary<string, string> Run(string outDir, string top, WriteOptions options)
    {
        LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = outDir, Options = options });
        ConvertOperation.Run(new ConvertRequest { Source = top, SourceSnapshot = "sn0", Output = Path.Combine(outDir, "export.raw"), OutputFormat = "raw" });
        ConvertOperation.Run(new ConvertRequest { Source = top, SourceSnapshot = "sn0", Output = Path.Combine(outDir, "export.qcow2"), Options = options, ComputeSha256 = true });
        return Directory.GetFiles(outDir).ToDictionary(f => Path.GetFileName(f), FileHash.Sha256);
    }
}
