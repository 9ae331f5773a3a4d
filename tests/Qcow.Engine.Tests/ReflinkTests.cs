using Microsoft.Win32.SafeHandles;
using Qcow.Engine.IO;
using Qcow.Testing;

namespace Qcow.Engine.Tests;

/// <summary>
/// <see cref="ExtentClone"/> on file systems the tests make (loop-mounted XFS with reflink=1 and btrfs; ext4, XFS without reflinks, tmpfs):
/// where extents can be shared, the cloned ranges are shared (FIEMAP's shared flag) and hold the source's bytes;
/// elsewhere, on misaligned ranges, across file systems and with the Linux calls off, the answer is "cannot clone"
/// and the target is untouched.
/// </summary>
public class ReflinkTests
{
    private const int Cluster = 64 << 10;

    [SkippableTheory]
    [InlineData("xfs")]
    [InlineData("btrfs")]
    public void Cloned_ranges_share_extents_and_hold_the_source_bytes(string kind)
    {
        using var fs = LoopFileSystem.Create(kind);
        byte[] data = WriteSource(fs["source.bin"], 16 * Cluster, seed: 1);
        using (var source = File.OpenHandle(fs["source.bin"]))
        using (var target = File.OpenHandle(fs["target.bin"], FileMode.CreateNew, FileAccess.ReadWrite))
        {
            // Two runs: clusters 2..5 to the start, clusters 9..10 to clusters 6..7 (past a gap the test fills).
            Assert.True(ExtentClone.TryClone(source, 2 * Cluster, target, 0, 4 * Cluster, Cluster));
            RandomAccess.Write(target, new byte[2 * Cluster], 4 * Cluster);
            Assert.True(ExtentClone.TryClone(source, 9 * Cluster, target, 6 * Cluster, 2 * Cluster, Cluster));
        }
        byte[] expected = [.. data.AsSpan(2 * Cluster, 4 * Cluster), .. new byte[2 * Cluster], .. data.AsSpan(9 * Cluster, 2 * Cluster)];
        Assert.Equal(expected, File.ReadAllBytes(fs["target.bin"]));
        Assert.Equal(data, File.ReadAllBytes(fs["source.bin"]));
        // The six cloned clusters are shared with the source; the written gap is not.
        Assert.Equal(6L * Cluster, LoopFileSystem.SharedBytes(fs["target.bin"]));
    }

    [SkippableTheory]
    [InlineData("ext4")]
    [InlineData("tmpfs")]
    [InlineData("xfs-noreflink")]
    public void Where_extents_cannot_be_shared_nothing_is_cloned(string kind)
    {
        using var fs = LoopFileSystem.Create(kind);
        AssertNothingCloned(fs["source.bin"], fs["target.bin"], seed: 2);
    }

    [SkippableFact]
    public void Misaligned_ranges_are_not_cloned()
    {
        using var fs = LoopFileSystem.Create("xfs");
        WriteSource(fs["source.bin"], 8 * Cluster, seed: 3);
        using (var source = File.OpenHandle(fs["source.bin"]))
        using (var target = File.OpenHandle(fs["target.bin"], FileMode.CreateNew, FileAccess.ReadWrite))
        {
            Assert.False(ExtentClone.TryClone(source, 512, target, 0, Cluster, Cluster));
            Assert.False(ExtentClone.TryClone(source, 0, target, 512, Cluster, Cluster));
            Assert.False(ExtentClone.TryClone(source, 0, target, 0, Cluster - 512, Cluster));
            // Aligned to the caller's 512-byte clusters but not to the file system's 4 KiB blocks: the kernel refuses.
            Assert.False(ExtentClone.TryClone(source, 512, target, 0, 4096, 512));
        }
        Assert.Equal(0, new FileInfo(fs["target.bin"]).Length);
    }

    [SkippableFact]
    public void Across_file_systems_nothing_is_cloned()
    {
        using var xfs = LoopFileSystem.Create("xfs");
        using var btrfs = LoopFileSystem.Create("btrfs");
        AssertNothingCloned(xfs["source.bin"], btrfs["target.bin"], seed: 4);
    }

    [SkippableFact]
    public void Without_linux_calls_nothing_is_cloned()
    {
        using var fs = LoopFileSystem.Create("xfs");
        WriteSource(fs["source.bin"], 4 * Cluster, seed: 5);
        using var source = File.OpenHandle(fs["source.bin"]);
        using var target = File.OpenHandle(fs["target.bin"], FileMode.CreateNew, FileAccess.ReadWrite);
        using (HostPlatform.WithoutLinuxCalls())
            Assert.False(ExtentClone.TryClone(source, 0, target, 0, 4 * Cluster, Cluster));
        Assert.Equal(0, RandomAccess.GetLength(target));
        // The switch is what refused: with it on, the same call clones.
        Assert.True(ExtentClone.TryClone(source, 0, target, 0, 4 * Cluster, Cluster));
    }

    [SkippableTheory]
    [InlineData("xfs", true)]
    [InlineData("btrfs", true)]
    [InlineData("ext4", false)]
    public void Clone_ranges_merge_and_the_rest_is_written(string kind, bool shares)
    {
        using var fs = LoopFileSystem.Create(kind);
        byte[] src = WriteSource(fs["source.bin"], 16 * Cluster, seed: 6);
        // The output: 2 written clusters, source clusters 5..7 (added one by one), 1 written, source clusters 0..1.
        byte[] written = new byte[3 * Cluster];
        new Random(7).NextBytes(written);
        byte[] data = [.. written.AsSpan(0, 2 * Cluster), .. src.AsSpan(5 * Cluster, 3 * Cluster), .. written.AsSpan(2 * Cluster), .. src.AsSpan(0, 2 * Cluster)];
        using var source = File.OpenHandle(fs["source.bin"]);
        var ranges = new CloneRanges();
        for (int c = 5; c < 8; c++) ranges.Add(source, c * Cluster, (c - 3) * Cluster, Cluster);
        ranges.Add(source, 0, 6 * Cluster, 2 * Cluster);
        Assert.Equal(2, ranges.Ranges.Count);
        Assert.Equal(3L * Cluster, ranges.Ranges[0].Length);

        long cloned = 0, writes = 0;
        bool off = false;
        using (var target = File.OpenHandle(fs["target.bin"], FileMode.CreateNew, FileAccess.ReadWrite))
        {
            void Write(long at, ReadOnlySpan<byte> bytes) { writes += bytes.Length; RandomAccess.Write(target, bytes, at); }
            // In two pieces, as an output goes out chunk by chunk: the first range is split between them.
            cloned += CloneRanges.Apply(target, 0, data.AsSpan(0, 4 * Cluster), ranges.Ranges, Cluster, ref off, Write);
            cloned += CloneRanges.Apply(target, 4 * Cluster, data.AsSpan(4 * Cluster), ranges.Ranges, Cluster, ref off, Write);
        }
        Assert.Equal(data, File.ReadAllBytes(fs["target.bin"]));
        Assert.Equal(shares ? 5L * Cluster : 0, cloned);
        Assert.Equal(data.Length - cloned, writes);
        Assert.Equal(!shares, off);
        if (shares) Assert.Equal(5L * Cluster, LoopFileSystem.SharedBytes(fs["target.bin"]));
    }

    [SkippableTheory]
    [InlineData("xfs", true)]
    [InlineData("btrfs", true)]
    [InlineData("ext4", false)]
    public void Unfilled_clone_ranges_are_read_from_the_source_when_refused(string kind, bool shares)
    {
        using var fs = LoopFileSystem.Create(kind);
        byte[] src = WriteSource(fs["source.bin"], 8 * Cluster, seed: 8);
        // The output: 1 written cluster, then source clusters 2..4 that the buffer does not hold (left as 0xEE).
        byte[] expected = new byte[4 * Cluster];
        new Random(9).NextBytes(expected.AsSpan(0, Cluster));
        src.AsSpan(2 * Cluster, 3 * Cluster).CopyTo(expected.AsSpan(Cluster));
        byte[] data = [.. expected.AsSpan(0, Cluster), .. Enumerable.Repeat((byte)0xEE, 3 * Cluster)];
        using var source = File.OpenHandle(fs["source.bin"]);
        var ranges = new CloneRanges();
        ranges.Add(source, 2 * Cluster, Cluster, 3 * Cluster, unfilled: true);

        bool off = false;
        long cloned;
        using (var target = File.OpenHandle(fs["target.bin"], FileMode.CreateNew, FileAccess.ReadWrite))
            cloned = CloneRanges.Apply(target, 0, data, ranges.Ranges, Cluster, ref off,
                (at, bytes) => RandomAccess.Write(target, bytes, at));
        Assert.Equal(expected, File.ReadAllBytes(fs["target.bin"]));
        Assert.Equal(shares ? 3L * Cluster : 0, cloned);
        Assert.Equal(!shares, off);
    }

    // An aligned clone of whole clusters is refused and leaves the new target empty.
    private static void AssertNothingCloned(string sourcePath, string targetPath, int seed)
    {
        WriteSource(sourcePath, 8 * Cluster, seed);
        using (var source = File.OpenHandle(sourcePath))
        using (var target = File.OpenHandle(targetPath, FileMode.CreateNew, FileAccess.ReadWrite))
            Assert.False(ExtentClone.TryClone(source, 0, target, 0, 4 * Cluster, Cluster));
        Assert.Equal(0, new FileInfo(targetPath).Length);
    }

    private static byte[] WriteSource(string path, int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        using (SafeFileHandle h = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write))
        {
            RandomAccess.Write(h, data, 0);
            RandomAccess.FlushToDisk(h);
        }
        return data;
    }
}
