namespace Qcow.Testing;

/// <summary>
/// Builds test images with qemu-img and qemu-io. Random data comes from a fixed seed, written through a data file
/// (qemu-io write -s), so every run makes the same images.
/// </summary>
public sealed class ImageBuilder(TempDir dir, int seed)
{
    private readonly Random _random = new(seed);
    private int _blob;

    /// <summary>The folder images are made in.</summary>
    public TempDir Dir => dir;

    /// <summary>qemu-img create -f qcow2 with options; returns the path.</summary>
    public string Create(string name, string size, string? options = null, string? backing = null, string backingFormat = "qcow2")
    {
        var args = new List<string> { "create", "-q", "-f", "qcow2" };
        if (options is not null) { args.Add("-o"); args.Add(options); }
        if (backing is not null) { args.Add("-b"); args.Add(backing); args.Add("-F"); args.Add(backingFormat); }
        args.Add(dir[name]);
        args.Add(size);
        Qemu.Img(args.ToArray());
        return dir[name];
    }

    /// <summary>Writes <paramref name="length"/> random bytes at <paramref name="offset"/>.</summary>
    public void WriteRandom(string image, long offset, long length, bool compressed = false)
    {
        string blob = dir[$"blob{_blob++}.bin"];
        var bytes = new byte[length];
        _random.NextBytes(bytes);
        File.WriteAllBytes(blob, bytes);
        Qemu.Io(image, $"write -q {(compressed ? "-c " : "")}-s {blob} {offset} {length}");
        File.Delete(blob);
    }

    /// <summary>Writes a byte pattern.</summary>
    public void WritePattern(string image, long offset, long length, byte pattern) =>
        Qemu.Io(image, $"write -q -P 0x{pattern:x2} {offset} {length}");

    /// <summary>Writes zeros (qemu-io write -z: zero clusters where it can).</summary>
    public void WriteZeros(string image, long offset, long length) => Qemu.Io(image, $"write -q -z {offset} {length}");

    /// <summary>Discards a range.</summary>
    public void Discard(string image, long offset, long length) => Qemu.Io(image, $"discard -q {offset} {length}");

    /// <summary>Takes an internal snapshot.</summary>
    public void Snapshot(string image, string name) => Qemu.Img("snapshot", "-c", name, image);

    /// <summary>Random writes: <paramref name="count"/> runs of random length up to <paramref name="maxLength"/>, aligned to 512.</summary>
    public void Scatter(string image, long size, int count, long maxLength)
    {
        for (int i = 0; i < count; i++)
        {
            long len = Math.Max(512, _random.NextInt64(1, maxLength) & ~511L);
            long off = _random.NextInt64(0, Math.Max(1, size - len)) & ~511L;
            switch (_random.Next(6))
            {
                case 0: WriteZeros(image, off, len); break;
                case 1: Discard(image, off, len); break;
                default: WriteRandom(image, off, len); break;
            }
        }
    }

    /// <summary>
    /// The seed chain: imageA(sn0) -> imageB(sn0,sn1) -> imageC(sn0), with random data, zero writes and discards
    /// between snapshots. Returns imageC's path.
    /// </summary>
    public string SeedChain(string size = "64M", string? options = null)
    {
        long bytes = Sizes.Parse(size);
        string a = Create("imageA.qcow2", size, options);
        Scatter(a, bytes, 12, 2 << 20);
        Snapshot(a, "sn0");
        Scatter(a, bytes, 8, 1 << 20);
        string b = Create("imageB.qcow2", size, options, "imageA.qcow2");
        Scatter(b, bytes, 8, 1 << 20);
        Snapshot(b, "sn0");
        Scatter(b, bytes, 8, 1 << 20);
        Snapshot(b, "sn1");
        Scatter(b, bytes, 8, 1 << 20);
        string c = Create("imageC.qcow2", size, options, "imageB.qcow2");
        Scatter(c, bytes, 4, 1 << 20);
        Snapshot(c, "sn0");
        Scatter(c, bytes, 8, 1 << 20);
        return c;
    }
}

/// <summary>Sizes in qemu's notation.</summary>
public static class Sizes
{
    /// <summary>Parses "64M", "2G", "512k", "4096".</summary>
    public static long Parse(string s)
    {
        char u = char.ToUpperInvariant(s[^1]);
        long m = u switch { 'K' => 1L << 10, 'M' => 1L << 20, 'G' => 1L << 30, 'T' => 1L << 40, _ => 1 };
        return long.Parse(m == 1 ? s : s[..^1], System.Globalization.CultureInfo.InvariantCulture) * m;
    }
}
