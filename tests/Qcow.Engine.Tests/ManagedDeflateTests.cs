using System.IO.Compression;
using System.Security.Cryptography;
using Qcow.Engine.Compression;
using Qcow.Engine.Operations;
using Qcow.Testing;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Tests;

/// <summary>
/// The managed deflate encoder: its streams inflate (with .NET's decoder and with qemu's zlib) to exactly the input,
/// never reach back further than qemu's 4 KiB window, and depend only on the input and the level.
/// </summary>
public class ManagedDeflateTests
{
    private static byte[] Inflate(ReadOnlySpan<byte> stream)
    {
        using var input = new MemoryStream(stream.ToArray());
        using var inflate = new DeflateStream(input, CompressionMode.Decompress);
        using var output = new MemoryStream();
        inflate.CopyTo(output);
        return output.ToArray();
    }

    /// <summary>The most a stream can exceed its input: a stored block header (5 bytes) per block of at most 16384 symbols.</summary>
    private static int Bound(int length) => length + 5 * (length / 16384 + 2) + 1;

    private static byte[] Encode(DeflateEncoder encoder, ReadOnlySpan<byte> input)
    {
        var dest = new byte[Bound(input.Length)];
        int n = encoder.Encode(input, dest);
        Assert.True(n > 0, "the encoder ran out of room for a stream it should fit");
        return dest[..n];
    }

    /// <summary>Text-like data: words from a small vocabulary, so matches of every length and distance occur.</summary>
    internal static byte[] Words(int length, int seed)
    {
        var r = new Random(seed);
        string[] words = ["qcow2", "cluster", "snapshot", "backing", "refcount", "the", "a", "of", "L2", "table", "\n",
            "deflate", "zstd", "image", "layer", "chain.json", "0x00000000", "    ", "guest", "host"];
        var b = new byte[length];
        for (int i = 0; i < length;)
        {
            var w = words[r.Next(words.Length)];
            for (int k = 0; k < w.Length && i < length; k++) b[i++] = (byte)w[k];
            if (i < length) b[i++] = r.Next(8) == 0 ? (byte)r.Next(256) : (byte)' ';
        }
        return b;
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static TheoryData<string> Shapes => ["empty", "one", "two", "zeros64k", "random64k", "words64k", "words2m",
        "runs", "half", "period3", "zeros2m", "random2m"];

    internal static byte[] Shape(string shape) => shape switch
    {
        "empty" => [],
        "one" => [0x42],
        "two" => [0x42, 0x42],
        "zeros64k" => new byte[65536],
        "random64k" => RandomBytes(65536, 1),
        "words64k" => Words(65536, 2),
        "words2m" => Words(2 << 20, 3),
        "runs" => Enumerable.Range(0, 70000).Select(i => (byte)(i / 300)).ToArray(),
        "half" => [.. RandomBytes(32768, 4), .. new byte[32768]],
        "period3" => Enumerable.Range(0, 65536).Select(i => (byte)(i % 3)).ToArray(),
        "zeros2m" => new byte[2 << 20],
        "random2m" => RandomBytes(2 << 20, 5),
        _ => throw new ArgumentException(shape),
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Streams_inflate_to_the_input(string shape)
    {
        var input = Shape(shape);
        var encoder = new DeflateEncoder(DeflateCodec.Level);
        var stream = Encode(encoder, input);
        Assert.Equal(input, Inflate(stream));
        Assert.True(encoder.LongestDistanceEmitted <= DeflateEncoder.MaxDistance);
        if (shape.StartsWith("zeros", StringComparison.Ordinal)) Assert.True(stream.Length < input.Length / 200, $"{stream.Length} bytes");
        if (shape.StartsWith("random", StringComparison.Ordinal)) Assert.True(stream.Length <= Bound(input.Length) && stream.Length >= input.Length);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(9)]
    public void Every_level_round_trips_and_higher_levels_do_not_compress_worse_on_text(int level)
    {
        var input = Words(300_000, level);
        var stream = Encode(new DeflateEncoder(level), input);
        Assert.Equal(input, Inflate(stream));
        if (level < 9) Assert.True(Encode(new DeflateEncoder(9), input).Length <= stream.Length * 101 / 100);
    }

    [Fact]
    public void Every_length_code_and_every_distance_code_up_to_4096_is_emitted_and_decodes()
    {
        var encoder = new DeflateEncoder(DeflateCodec.Level);
        var lengths = new SortedSet<int> { 3, 4, 257, 258 };
        for (int c = 0; c < 29; c++)
        {
            lengths.Add(DeflateTables.LengthBase[c]);
            lengths.Add(Math.Min(258, DeflateTables.LengthBase[c] + (1 << DeflateTables.LengthExtra[c]) - 1));
        }
        var distances = new SortedSet<int> { 1, 2, 4095, 4096 };
        for (int c = 0; c < 24; c++)
        {
            distances.Add(DeflateTables.DistanceBase[c]);
            distances.Add(Math.Min(4096, DeflateTables.DistanceBase[c] + (1 << DeflateTables.DistanceExtra[c]) - 1));
        }
        int seed = 100;
        foreach (int length in lengths)
            foreach (int distance in distances)
            {
                // Random bytes, then a copy of `length` bytes from `distance` back (overlapping when shorter), then
                // random bytes: the only long match is the planted one.
                var input = RandomBytes(distance + length + 64, seed++);
                for (int i = 0; i < length; i++) input[distance + i] = input[i];
                var stream = Encode(encoder, input);
                Assert.Equal(input, Inflate(stream));
            }
        for (int c = 0; c < 29; c++) Assert.True(encoder.LengthCodesEmitted[c] > 0, $"length code {257 + c} never emitted");
        for (int c = 0; c < 24; c++) Assert.True(encoder.DistanceCodesEmitted[c] > 0, $"distance code {c} never emitted");
        for (int c = 24; c < 30; c++) Assert.Equal(0, encoder.DistanceCodesEmitted[c]);
        Assert.Equal(DeflateEncoder.MaxDistance, encoder.LongestDistanceEmitted);
    }

    [Theory]
    [InlineData(15)]
    [InlineData(7)]
    public void Huffman_lengths_stay_within_the_limit_and_form_a_complete_code(int maxBits)
    {
        var huffman = new HuffmanCode(DeflateTables.LiteralLengthSymbols, 15);
        // Fibonacci weights make the deepest unlimited Huffman tree; the other sets are flat, skewed and tiny.
        var fib = new int[DeflateTables.CodeLengthSymbols];
        for (int i = 0; i < fib.Length; i++) fib[i] = i < 2 ? 1 : fib[i - 1] + fib[i - 2];
        var r = new Random(maxBits);
        int[][] sets =
        [
            fib,
            Enumerable.Repeat(5, 19).ToArray(),
            Enumerable.Range(0, 19).Select(i => i == 3 ? 1_000_000 : 1).ToArray(),
            Enumerable.Range(0, 19).Select(i => i == 7 ? 9 : 0).ToArray(),
            new int[19],
            Enumerable.Range(0, 19).Select(_ => r.Next(3) == 0 ? 0 : r.Next(1, 1 << r.Next(20))).ToArray(),
        ];
        foreach (var freq in sets)
        {
            var lengths = new byte[freq.Length];
            huffman.BuildLengths(freq, maxBits, lengths);
            Assert.All(lengths, l => Assert.InRange(l, 0, maxBits));
            for (int s = 0; s < freq.Length; s++) if (freq[s] > 0) Assert.True(lengths[s] > 0, $"symbol {s} has no code");
            // Kraft sum exactly 1: a complete prefix code, which every inflater accepts.
            Assert.Equal(1 << 15, lengths.Where(l => l > 0).Sum(l => 1 << (15 - l)));
        }
    }

    [Fact]
    public void Random_mixtures_round_trip()
    {
        var r = new Random(2024);
        var encoder = new DeflateEncoder(DeflateCodec.Level);
        for (int round = 0; round < 300; round++)
        {
            var input = new byte[r.Next(0, 200_000)];
            for (int i = 0; i < input.Length;)
            {
                int n = Math.Min(input.Length - i, r.Next(1, 5000));
                var part = input.AsSpan(i, n);
                switch (r.Next(4))
                {
                    case 0: r.NextBytes(part); break;
                    case 1: part.Fill((byte)r.Next(256)); break;
                    case 2: // a copy from up to 5000 bytes back: some within the window, some beyond
                        int back = r.Next(1, 5000);
                        for (int k = 0; k < n; k++) input[i + k] = i + k - back >= 0 ? input[i + k - back] : (byte)k;
                        break;
                    default: Words(n, round * 7 + i).CopyTo(part); break;
                }
                i += n;
            }
            Assert.Equal(input, Inflate(Encode(encoder, input)));
        }
        Assert.True(encoder.LongestDistanceEmitted <= DeflateEncoder.MaxDistance);
    }

    [Fact]
    public void Repeats_further_back_than_4096_bytes_are_not_matched()
    {
        // An 8 KiB random block repeated: a zlib with a 32 KiB window would match it at distance 8192.
        var block = RandomBytes(8192, 9);
        var input = Enumerable.Range(0, 8).SelectMany(_ => block).ToArray();
        var encoder = new DeflateEncoder(9);
        var stream = Encode(encoder, input);
        Assert.Equal(input, Inflate(stream));
        Assert.True(encoder.LongestDistanceEmitted <= 4096, $"distance {encoder.LongestDistanceEmitted}");
        Assert.True(stream.Length > 60000, "nothing within 4 KiB repeats, so this cannot compress");
    }

    [Fact]
    public void Output_depends_only_on_input_and_level()
    {
        // Pinned: these bytes are part of the output format (README, "Changelog of output formats").
        var input = Words(1 << 20, 77);
        var a = Encode(new DeflateEncoder(DeflateCodec.Level), input);
        var shared = new DeflateEncoder(DeflateCodec.Level);
        Encode(shared, RandomBytes(100_000, 1)); // state left by an earlier call must not leak into the next
        var b = Encode(shared, input);
        Assert.Equal(a, b);
        string sha = Convert.ToHexStringLower(SHA256.HashData(a));
        Assert.True(sha == "ff8d07ed98b6957935f0da3c64a3890acc4d0d5b3cc3001159cf4ab5392cabf3", $"SHA-256 {sha}, {a.Length} bytes");
    }

    [Fact]
    public void Cluster_compression_keeps_only_streams_smaller_than_the_cluster()
    {
        var random = RandomBytes(65536, 3);
        var dest = new byte[65536 + 1024];
        Assert.Equal(0, ClusterCompression.Compress(ClusterCodec.Deflate, random, dest));
        var text = Words(65536, 3);
        int n = ClusterCompression.Compress(ClusterCodec.Deflate, text, dest);
        Assert.InRange(n, 1, 65535);
        var back = new byte[65536];
        Assert.Null(ClusterCompression.TryDecompress(ClusterCodec.Deflate, dest.AsSpan(0, n), back));
        Assert.Equal(text, back);
        // A destination too small for the stream is "does not fit", never an exception.
        Assert.Equal(0, ClusterCompression.Compress(ClusterCodec.Deflate, text, dest.AsSpan(0, n - 1)));
    }

    [SkippableTheory]
    [InlineData("512")]
    [InlineData("4k")]
    [InlineData("64k")]
    [InlineData("2M")]
    public void Compressed_images_read_back_through_qemu(string clusterSize)
    {
        Qemu.Require();
        using var dir = new TempDir("deflate");
        // Mixed clusters: text, runs, half random, random, zeros; 6 MiB so 2 MiB clusters get several of each.
        var raw = new byte[6 << 20];
        var r = new Random(21);
        for (int off = 0; off < raw.Length; off += 16384)
        {
            var part = raw.AsSpan(off, 16384);
            switch (r.Next(5))
            {
                case 0: Words(16384, off).CopyTo(part); break;
                case 1: part.Fill((byte)r.Next(256)); break;
                case 2: r.NextBytes(part[..8192]); break;
                case 3: r.NextBytes(part); break;
            }
        }
        File.WriteAllBytes(dir["src.raw"], raw);
        Qemu.Img("convert", "-f", "raw", "-O", "qcow2", dir["src.raw"], dir["src.qcow2"]);
        var wo = WriteOptions.Default.With($"cluster_size={clusterSize},compression_type=zlib") with { Compress = true };
        ConvertOperation.Run(new ConvertRequest { Source = dir["src.qcow2"], Output = dir["out.qcow2"], Options = wo });
        Qemu.AssertClean(dir["out.qcow2"]);
        Assert.Equal(0, Qemu.ImgAllow([0, 1], "compare", "-f", "raw", "-F", "qcow2", dir["src.raw"], dir["out.qcow2"]).ExitCode);
        // qemu's own read path, cluster by cluster, into a raw file.
        Qemu.Img("convert", "-f", "qcow2", "-O", "raw", dir["out.qcow2"], dir["back.raw"]);
        Assert.Equal(SHA256.HashData(raw), SHA256.HashData(File.ReadAllBytes(dir["back.raw"])));
        var check = CheckOperation.Run(new CheckRequest { Image = dir["out.qcow2"] });
        Assert.True(check.CompressedClusters > 0, "expected compressed clusters");
    }
}
