using System.Runtime.InteropServices;

namespace Qcow.Engine.Compression;

/// <summary>
/// Raw deflate with a 4 KiB window (windowBits -12), which is what qemu's zlib compression type reads back.
/// .NET's DeflateStream always uses a 32 KiB window, which qemu rejects, so we call the system zlib: its output is
/// the same on every machine (no CPU-dependent paths), which keeps compressed images deterministic.
/// </summary>
internal static unsafe class DeflateCodec
{
    private const string Lib = "libz.so.1";
    private const int ZFinish = 4, ZStreamEnd = 1, ZOk = 0, ZDeflated = 8, ZDefaultStrategy = 0;
    private const int WindowBits = -12, MemLevel = 9, Level = 6;

    [StructLayout(LayoutKind.Sequential)]
    private struct ZStream
    {
        public byte* NextIn; public uint AvailIn; public nuint TotalIn;
        public byte* NextOut; public uint AvailOut; public nuint TotalOut;
        public nint Msg; public nint State;
        public nint ZAlloc; public nint ZFree; public nint Opaque;
        public int DataType; public nuint Adler; public nuint Reserved;
    }

    [DllImport(Lib, EntryPoint = "deflateInit2_")]
    private static extern int DeflateInit2(ZStream* strm, int level, int method, int windowBits, int memLevel, int strategy, byte* version, int streamSize);
    [DllImport(Lib, EntryPoint = "deflate")]
    private static extern int Deflate(ZStream* strm, int flush);
    [DllImport(Lib, EntryPoint = "deflateEnd")]
    private static extern int DeflateEnd(ZStream* strm);

    /// <summary>Compresses <paramref name="src"/> into <paramref name="dest"/>; 0 when it does not fit.</summary>
    public static int Compress(ReadOnlySpan<byte> src, Span<byte> dest)
    {
        ZStream z = default;
        ReadOnlySpan<byte> version = "1.2.11\0"u8;
        int rc;
        try
        {
            fixed (byte* v = version)
                rc = DeflateInit2(&z, Level, ZDeflated, WindowBits, MemLevel, ZDefaultStrategy, v, sizeof(ZStream));
        }
        catch (DllNotFoundException)
        {
            throw new QcowException(null, "deflate compression needs the system zlib (libz.so.1); install zlib1g or use -o compression_type=zstd");
        }
        if (rc != ZOk) throw new QcowException(null, $"zlib deflateInit2 failed ({rc})");
        try
        {
            fixed (byte* i = src)
            fixed (byte* o = dest)
            {
                z.NextIn = i; z.AvailIn = (uint)src.Length;
                z.NextOut = o; z.AvailOut = (uint)dest.Length;
                rc = Deflate(&z, ZFinish);
                return rc == ZStreamEnd ? (int)z.TotalOut : 0;
            }
        }
        finally
        {
            DeflateEnd(&z);
        }
    }
}
