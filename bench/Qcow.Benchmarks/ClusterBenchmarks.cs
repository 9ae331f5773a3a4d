using System.Numerics;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Qcow.Benchmarks;

/// <summary>Comparing a candidate cluster with the cluster below (DiffWriter's per-cluster test).</summary>
[MemoryDiagnoser]
public class ClusterCompareBenchmarks
{
    private byte[] _a = null!, _b = null!, _c = null!;

    [Params(65536)]
    public int ClusterSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Random(6);
        _a = new byte[ClusterSize];
        rng.NextBytes(_a);
        _b = (byte[])_a.Clone();
        _c = (byte[])_a.Clone();
        _c[^1] ^= 1;
    }

    /// <summary>Equal clusters: the whole cluster must be read (the worst case).</summary>
    [Benchmark(Baseline = true)]
    public bool SequenceEqual_Equal() => _a.AsSpan().SequenceEqual(_b);

    /// <summary>Differ in the last byte.</summary>
    [Benchmark]
    public bool SequenceEqual_DiffLast() => _a.AsSpan().SequenceEqual(_c);

    /// <summary>A hand-written Vector loop, for comparison with the BCL.</summary>
    [Benchmark]
    public bool VectorLoop_Equal()
    {
        var x = MemoryMarshal.Cast<byte, Vector<byte>>(_a.AsSpan());
        var y = MemoryMarshal.Cast<byte, Vector<byte>>(_b.AsSpan());
        for (int i = 0; i < x.Length; i++)
            if (x[i] != y[i]) return false;
        return true;
    }
}

/// <summary>Deciding whether a cluster is all zeros (written as a zero cluster instead of data).</summary>
[MemoryDiagnoser]
public class ZeroDetectionBenchmarks
{
    private byte[] _zero = null!, _data = null!, _lateData = null!;

    [GlobalSetup]
    public void Setup()
    {
        _zero = new byte[65536];
        _data = new byte[65536];
        new Random(6).NextBytes(_data);
        _lateData = new byte[65536];
        _lateData[^1] = 1;
    }

    [Benchmark(Baseline = true)]
    public bool ContainsAnyExcept_Zero() => _zero.AsSpan().ContainsAnyExcept((byte)0);

    [Benchmark]
    public bool ContainsAnyExcept_Data() => _data.AsSpan().ContainsAnyExcept((byte)0);

    [Benchmark]
    public bool ContainsAnyExcept_LastByte() => _lateData.AsSpan().ContainsAnyExcept((byte)0);

    /// <summary>OR-reduction over ulongs (no early exit): what a naive "zero detection" does.</summary>
    [Benchmark]
    public bool OrReduce_Zero()
    {
        ulong acc = 0;
        foreach (ulong w in MemoryMarshal.Cast<byte, ulong>(_zero.AsSpan())) acc |= w;
        return acc != 0;
    }
}
