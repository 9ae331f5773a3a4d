using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>
/// Metadata reads as qemu's block layer makes them: bytes past the end of the file read as zeros. Used where qemu
/// opens or checks an image whose tables run past the end, so that info and check see what qemu sees; guest data
/// past the end is still refused where it is read.
/// </summary>
internal static class PastEnd
{
    /// <summary>Fills <paramref name="buffer"/> from <paramref name="offset"/>; what lies past the end is zeros.</summary>
    public static void ReadZeroFilled(ImageFile file, long offset, Span<byte> buffer)
    {
        int got = offset < 0 ? 0 : file.ReadAtMost(offset, buffer);
        buffer[got..].Clear();
    }

    /// <summary>True when <paramref name="length"/> bytes from <paramref name="offset"/> all lie inside the file.</summary>
    public static bool Inside(ImageFile file, ulong offset, ulong length) =>
        offset <= (ulong)file.Length && length <= (ulong)file.Length - offset;
}
