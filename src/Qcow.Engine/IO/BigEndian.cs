using System.Buffers.Binary;

namespace Qcow.Engine.IO;

/// <summary>Short names for the big-endian fields the qcow2 format uses everywhere.</summary>
internal static class BigEndian
{
    public static ushort U16(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt16BigEndian(s[at..]);
    public static uint U32(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt32BigEndian(s[at..]);
    public static ulong U64(ReadOnlySpan<byte> s, int at) => BinaryPrimitives.ReadUInt64BigEndian(s[at..]);
    public static void Put(Span<byte> s, int at, ushort v) => BinaryPrimitives.WriteUInt16BigEndian(s[at..], v);
    public static void Put(Span<byte> s, int at, uint v) => BinaryPrimitives.WriteUInt32BigEndian(s[at..], v);
    public static void Put(Span<byte> s, int at, ulong v) => BinaryPrimitives.WriteUInt64BigEndian(s[at..], v);
}
