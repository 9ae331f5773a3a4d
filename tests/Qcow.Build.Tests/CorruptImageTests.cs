using Qcow.Build.Tests.Support;
using Qcow.Engine.Tests.Infrastructure;

namespace Qcow.Build.Tests;

/// <summary>
/// An image whose corrupt bit is set (qemu found it damaged) is read read-only, as qemu-img reads it: the chain builds,
/// with a QCOW0100 warning that names the image.
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
        using (var f = new FileStream(imageB, FileMode.Open, FileAccess.ReadWrite))
        {
            // Incompatible feature bit 1 (corrupt), header bytes 72..79, big-endian: the low byte is byte 79.
            f.Position = 79;
            int low = f.ReadByte();
            f.Position = 79;
            f.WriteByte((byte)(low | 2));
        }
        var p = new ImgProject(_dir.Path, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        var b = p.Build();
        Assert.True(b.Success, b.Log.Text);
        var w = Assert.Single(b.Log.Warnings.Where(x => x.Message?.Contains("corrupt bit", StringComparison.Ordinal) == true).DistinctBy(x => x.Message));
        Assert.Equal("QCOW0100", w.Code);
        Assert.Contains(imageB, w.Message, StringComparison.Ordinal);
        seed.AssertLayersCorrect(p.OutDir);
    }

    public void Dispose() => _dir.Dispose();
}
