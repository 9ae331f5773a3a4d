using System.Buffers.Binary;
using Qcow.Testing;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// Well-formed images made by qemu-img/qemu-io, small enough to copy and damage many times: each has data, a zero
/// write, a compressed cluster and (most) an internal snapshot. Built once per test class.
/// </summary>
public sealed class HostileImages : IDisposable
{
    private readonly TempDir _dir = new("hostile-bases-");
    private readonly Dictionary<string, string> _built = new();
    private readonly Lock _lock = new();

    /// <summary>The kinds of base image.</summary>
    public static readonly string[] Kinds = ["v3", "zstd", "xl2", "v2", "small"];

    /// <summary>The path of base image <paramref name="kind"/> (built on first use; needs qemu).</summary>
    public string Base(string kind)
    {
        lock (_lock)
        {
            if (_built.TryGetValue(kind, out var p)) return p;
            p = Build(kind);
            _built[kind] = p;
            return p;
        }
    }

    /// <summary>Copies base image <paramref name="kind"/> to <paramref name="path"/>.</summary>
    public string CopyTo(string kind, string path)
    {
        File.Copy(Base(kind), path, overwrite: true);
        return path;
    }

    private string Build(string kind)
    {
        var b = new ImageBuilder(_dir, seed: 5000 + Array.IndexOf(Kinds, kind));
        string name = $"{kind}.qcow2";
        string path;
        switch (kind)
        {
            case "v3":
            case "zstd":
                path = b.Create(name, "4M", kind == "zstd" ? "compression_type=zstd" : null);
                b.WriteRandom(path, 0, 128 << 10);
                b.Snapshot(path, "s1");
                b.WriteRandom(path, 1 << 20, 64 << 10);
                Qemu.Io(path, "write -q -c -P 0x66 2M 64k");
                b.WriteZeros(path, 3 << 20, 64 << 10);
                break;
            case "xl2":
                path = b.Create(name, "4M", "extended_l2=on");
                b.WriteRandom(path, 0, 4096);
                b.WriteRandom(path, 16384, 8192);
                b.WriteZeros(path, 32768, 4096);
                b.Snapshot(path, "s1");
                Qemu.Io(path, "write -q -c -P 0x66 2M 64k");
                break;
            case "v2":
                path = b.Create(name, "4M", "compat=0.10");
                b.WriteRandom(path, 0, 128 << 10);
                b.Snapshot(path, "s1");
                Qemu.Io(path, "write -q -c -P 0x66 2M 64k");
                break;
            case "small":
                // 512-byte clusters and 2-bit refcounts: many tables in a small file (iotest 112's widths).
                path = b.Create(name, "256k", "cluster_size=512,refcount_bits=2");
                b.WriteRandom(path, 0, 8192);
                b.Snapshot(path, "s1");
                b.WriteRandom(path, 64 << 10, 4096);
                Qemu.Io(path, "write -q -c -P 0x66 128k 512");
                break;
            default:
                throw new ArgumentException(kind);
        }
        return path;
    }

    /// <summary>Writes a big-endian value of <paramref name="width"/> bytes (1, 2, 4 or 8) at <paramref name="offset"/>.</summary>
    public static void Put(string path, long offset, int width, ulong value)
    {
        var bytes = new byte[width];
        switch (width)
        {
            case 1: bytes[0] = (byte)value; break;
            case 2: BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)value); break;
            case 4: BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)value); break;
            default: BinaryPrimitives.WriteUInt64BigEndian(bytes, value); break;
        }
        PutBytes(path, offset, bytes);
    }

    /// <summary>Overwrites bytes at <paramref name="offset"/>.</summary>
    public static void PutBytes(string path, long offset, ReadOnlySpan<byte> bytes)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(bytes);
    }

    /// <summary>Cuts the file to <paramref name="length"/> bytes.</summary>
    public static void Truncate(string path, long length)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
        f.SetLength(length);
    }

    /// <inheritdoc />
    public void Dispose() => _dir.Dispose();
}
