using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>
/// Damaged images in a build: an image whose corrupt bit is set (qemu found it damaged) is read read-only, as qemu-img
/// reads it, with a QCOW0100 warning that names it; a damaged snapshot entry fails the chain, named, unless the
/// Snapshots metadata leaves it out.
/// </summary>
[Collection(SeedCollection.Name)]
public sealed class CorruptImageTests(SeedChain seed) : IDisposable
{
    private readonly TempDir _dir = new("corrupt");

    [SkippableFact]
    public void A_chain_with_the_corrupt_bit_set_on_one_image_builds_with_QCOW0100_naming_it()
    {
        seed.CopyTo(_dir["images"]);
        string imageB = _dir["images/imageB.qcow2"];
        SetCorruptBit(imageB);
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        var b = p.Build();
        Assert.True(b.Success, b.Log.Text);
        AssertOneCorruptWarning(b, imageB);
        seed.AssertLayersCorrect(p.OutDir);
    }

    [SkippableFact]
    public void A_corrupt_image_warns_once_per_build_though_resolving_and_writing_both_open_it()
    {
        // imageB is read by the chain and by an export of its own, each resolved and then written: one warning.
        seed.CopyTo(_dir["images"]);
        string imageB = _dir["images/imageB.qcow2"];
        SetCorruptBit(imageB);
        var p = new ImgProject(_dir.Path, """
            <ItemGroup>
              <QcowChain Include="images/imageC.qcow2" />
              <QcowSnapshot Include="images/imageB.qcow2" Snapshot="sn0" OutputFile="export/imageB_sn0.qcow2" />
            </ItemGroup>
            """);
        var built = p.Build();
        Assert.True(built.Success, built.Log.Text);
        Assert.True(built.Ran("QcowLinearize") && built.Ran("QcowConvert"), built.Log.Text);
        AssertOneCorruptWarning(built, imageB);
        seed.AssertLayersCorrect(p.OutDir);
        Assert.True(File.Exists(_dir["export/imageB_sn0.qcow2"]));

        // Nothing to write: the resolve step still opens the image, and still warns once.
        var again = p.Build();
        Assert.True(again.Success, again.Log.Text);
        Assert.True(again.Skipped("QcowLinearize") && again.Skipped("QcowConvert"), again.Log.Text);
        AssertOneCorruptWarning(again, imageB);
    }

    /// <summary>The build's only warning: QCOW0100 about <paramref name="image"/>'s corrupt bit.</summary>
    private static void AssertOneCorruptWarning(BuildOutcome b, string image)
    {
        var w = Assert.Single(b.Log.Warnings);
        Assert.Equal("QCOW0100", w.Code);
        // Logged against the damaged image itself (here the chain's middle image, not its top).
        Assert.Equal(image, w.File);
        Assert.StartsWith("the corrupt bit is set", w.Message, StringComparison.Ordinal);
    }

    /// <summary>Sets incompatible feature bit 1 (corrupt), as qemu does when it finds an image damaged.</summary>
    private static void SetCorruptBit(string image)
    {
        using var f = new FileStream(image, FileMode.Open, FileAccess.ReadWrite);
        // Header bytes 72..79, big-endian: the low byte is byte 79.
        f.Position = 79;
        int low = f.ReadByte();
        f.Position = 79;
        f.WriteByte((byte)(low | 2));
    }

    [SkippableFact]
    public void A_damaged_snapshot_entry_fails_the_chain_naming_it_unless_Snapshots_leaves_it_out()
    {
        seed.CopyTo(_dir["images"]);
        string imageB = _dir["images/imageB.qcow2"];
        using (var f = new FileStream(imageB, FileMode.Open, FileAccess.ReadWrite))
        {
            // imageB's second snapshot entry (sn1): its L1 table offset, off the cluster boundary.
            long entry = (long)ReadU64(f, 64);
            long second = entry + ((40 + ReadU32(f, entry + 36) + ReadU16(f, entry + 12) + ReadU16(f, entry + 14) + 7) & ~7L);
            ulong l1 = ReadU64(f, second);
            f.Position = second;
            f.Write(BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(l1 + 512)));
        }
        Directory.CreateDirectory(_dir["all"]);
        Directory.CreateDirectory(_dir["some"]);
        var p = new ImgProject(_dir["all"], """<ItemGroup><QcowChain Include="../images/imageC.qcow2" /></ItemGroup>""");
        var failed = p.Build();
        Assert.False(failed.Success);
        var e = Assert.Single(failed.Log.Errors);
        Assert.Equal("QCOW0002", e.Code);
        Assert.Equal(imageB, e.File);
        Assert.Contains("snapshot table entry 1 ('sn1', id 2) l1_table_offset", e.Message, StringComparison.Ordinal);

        var some = new ImgProject(_dir["some"], """<ItemGroup><QcowChain Include="../images/imageC.qcow2" Snapshots="sn0" /></ItemGroup>""");
        var built = some.Build();
        Assert.True(built.Success, built.Log.Text);
        var layers = SeedStates.All.Select(l => l.Layer).Where(f => f != "imageB_sn1.qcow2").ToList();
        seed.AssertLayersCorrect(some.OutDir, layers);
        Assert.False(File.Exists(some.Out("imageB_sn1.qcow2")));
    }

    private static ulong ReadU64(FileStream f, long at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(ReadAt(f, at, 8));
    private static uint ReadU32(FileStream f, long at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(ReadAt(f, at, 4));
    private static ushort ReadU16(FileStream f, long at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(ReadAt(f, at, 2));

    private static byte[] ReadAt(FileStream f, long at, int length)
    {
        var b = new byte[length];
        f.Position = at;
        f.ReadExactly(b);
        return b;
    }

    public void Dispose() => _dir.Dispose();
}
