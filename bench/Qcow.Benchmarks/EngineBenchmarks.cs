using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using Qcow.Engine.Compression;
using Qcow.Engine.Format;
using Qcow.Engine.Views;

namespace Qcow.Benchmarks;

/// <summary>
/// L2 resolution: every guest cluster of a 4 GiB image whose clusters are all allocated (one L2 entry each), looked up
/// one by one (<see cref="QcowImage.Lookup"/>) and walked as extents (<see cref="QcowView.GetExtent"/>, what DiffWriter
/// does). Makes the image with qemu-img.
/// </summary>
[MemoryDiagnoser]
public class L2ResolutionBenchmarks
{
    private string _dir = null!;
    private QcowImage _image = null!;
    private QcowView _view = null!;
    private ulong[] _l1 = null!;
    private long _clusters;

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("qcow-bench-").FullName;
        string path = Path.Combine(_dir, "l2.qcow2");
        // preallocation=metadata: every L2 entry points at a (sparse) host cluster, as in a fully written image.
        Run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=64k,preallocation=metadata", path, "4G");
        _image = QcowImage.Open(path);
        _view = new QcowView(_image, null, null, 0);
        _l1 = _image.ActiveL1;
        _clusters = _view.Size / _image.Header.ClusterSize;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _image.Dispose();
        Directory.Delete(_dir, true);
    }

    [Benchmark]
    public ulong LookupEveryCluster()
    {
        ulong acc = 0;
        for (long c = 0; c < _clusters; c++) acc ^= _image.Lookup(_l1, c).Word;
        return acc;
    }

    [Benchmark]
    public long WalkExtents()
    {
        long n = 0, offset = 0, size = _view.Size;
        while (offset < size)
        {
            var e = _view.GetExtent(offset, size - offset);
            offset += e.Length;
            n++;
        }
        return n;
    }

    private static void Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false })!;
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} failed ({p.ExitCode})");
    }
}

/// <summary>Compressing one 64 KiB cluster (convert -c, linearize -o with compression).</summary>
[MemoryDiagnoser]
public class CompressionBenchmarks
{
    private byte[] _text = null!, _random = null!, _dest = null!;

    [Params(CompressionType.Deflate, CompressionType.Zstd)]
    public CompressionType Type { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _random = new byte[65536];
        new Random(6).NextBytes(_random);
        // Compressible: repeated log-like lines with varying numbers.
        var sb = new System.Text.StringBuilder();
        for (int i = 0; sb.Length < 65536; i++) sb.Append($"2026-11-25T18:{i % 60:00}:{i % 7:00} worker[{i % 13}] block {i * 7919} ok\n");
        _text = System.Text.Encoding.ASCII.GetBytes(sb.ToString(0, 65536));
        _dest = new byte[65536 + 1024];
    }

    [Benchmark]
    public int Compressible() => ClusterCompression.Compress(Type, _text, _dest);

    [Benchmark]
    public int Random() => ClusterCompression.Compress(Type, _random, _dest);
}
