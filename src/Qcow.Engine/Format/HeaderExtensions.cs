using System.Text;
using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>One entry of the feature name table extension.</summary>
/// <param name="Type">0 incompatible, 1 compatible, 2 autoclear.</param>
/// <param name="Bit">The bit number.</param>
/// <param name="Name">The feature's name.</param>
internal readonly record struct FeatureName(byte Type, byte Bit, string Name);

/// <summary>
/// The header extensions that follow the header in the first cluster (spec: "Header extensions").
/// Unknown extensions are skipped.
/// </summary>
internal sealed class HeaderExtensions
{
    /// <summary>End of the extension area.</summary>
    public const uint EndMarker = 0;
    /// <summary>Backing file format name.</summary>
    public const uint BackingFormatType = 0xe2792aca;
    /// <summary>Feature name table.</summary>
    public const uint FeatureNameTableType = 0x6803f857;
    /// <summary>Bitmaps extension.</summary>
    public const uint BitmapsType = 0x23852875;
    /// <summary>Full disk encryption header pointer.</summary>
    public const uint EncryptionHeaderType = 0x0537be77;
    /// <summary>External data file name.</summary>
    public const uint ExternalDataFileType = 0x44415441;

    /// <summary>The backing format ("qcow2", "raw", ...), or null.</summary>
    public string? BackingFormat { get; private set; }
    /// <summary>Names of feature bits.</summary>
    public IReadOnlyList<FeatureName> FeatureNames { get; private set; } = [];
    /// <summary>Number of persistent dirty bitmaps (we do not use them; they do not change guest data).</summary>
    public uint BitmapCount { get; private set; }
    /// <summary>Offset of the bitmap directory, for refcount checks.</summary>
    public ulong BitmapDirectoryOffset { get; private set; }
    /// <summary>Size of the bitmap directory in bytes.</summary>
    public ulong BitmapDirectorySize { get; private set; }
    /// <summary>True when the encryption header pointer extension is present.</summary>
    public bool HasEncryptionHeader { get; private set; }
    /// <summary>External data file name, or null.</summary>
    public string? ExternalDataFile { get; private set; }
    /// <summary>Types of extensions this engine does not know, in file order.</summary>
    public IReadOnlyList<uint> UnknownTypes { get; private set; } = [];
    /// <summary>Offset just past the end marker (or the end of the area).</summary>
    public int EndOffset { get; private set; }

    /// <summary>Parses the extensions of a v3 header that start at header_length (v2: at 72).</summary>
    public static HeaderExtensions Parse(ReadOnlySpan<byte> firstCluster, QcowHeader header, string path)
    {
        var ext = new HeaderExtensions();
        var names = new List<FeatureName>();
        var unknown = new List<uint>();
        int at = (int)header.HeaderLength;
        // As qemu: the extension area ends at the backing file name when there is one, else at the end of the first
        // cluster; an extension (its type and length too) that does not fit before that end refuses the image.
        // (A backing_file_offset past the first cluster is refused by QcowHeader.Validate.)
        long end = header.BackingFileOffset != 0 ? (long)Math.Min(header.BackingFileOffset, (ulong)header.ClusterSize) : header.ClusterSize;
        string endName = header.BackingFileOffset != 0 ? $"backing_file_offset ({end})" : "the end of the first cluster";
        var utf8 = new UTF8Encoding(false, true);
        int count = 0;
        while (at < end)
        {
            // The first cluster is read whole: past the end of a short file it is zeros (an end marker), as in qemu.
            uint type = at + 4 <= firstCluster.Length ? BigEndian.U32(firstCluster, at) : 0;
            uint length = at + 8 <= firstCluster.Length ? BigEndian.U32(firstCluster, at + 4) : 0;
            // qemu checks the length before the type, the end marker's too ("Header extension too large").
            long dataEnd = (long)at + 8 + length;
            if (dataEnd > end)
                throw new QcowFormatException(path, $"header extension 0x{type:x8}", $"length {length} at offset {at} runs past {endName}");
            if (type == EndMarker) { at += 8; break; }
            if (++count > 4096)
                throw new QcowFormatException(path, "header extension", "too many header extensions");
            var data = firstCluster.Slice(at + 8, (int)length);
            try
            {
                switch (type)
                {
                    case BackingFormatType:
                        ext.BackingFormat = utf8.GetString(data).TrimEnd('\0');
                        break;
                    case FeatureNameTableType:
                        for (int i = 0; i + 48 <= data.Length; i += 48)
                        {
                            var nameBytes = data.Slice(i + 2, 46);
                            int nul = nameBytes.IndexOf((byte)0);
                            if (nul >= 0) nameBytes = nameBytes[..nul];
                            names.Add(new FeatureName(data[i], data[i + 1], Encoding.UTF8.GetString(nameBytes)));
                        }
                        break;
                    case BitmapsType:
                        if (data.Length < 24)
                            throw new QcowFormatException(path, "bitmaps extension", $"length {length} is shorter than 24");
                        ext.BitmapCount = BigEndian.U32(data, 0);
                        ext.BitmapDirectorySize = BigEndian.U64(data, 8);
                        ext.BitmapDirectoryOffset = BigEndian.U64(data, 16);
                        break;
                    case EncryptionHeaderType:
                        ext.HasEncryptionHeader = true;
                        break;
                    case ExternalDataFileType:
                        ext.ExternalDataFile = utf8.GetString(data).TrimEnd('\0');
                        break;
                    default:
                        unknown.Add(type);
                        break;
                }
            }
            catch (DecoderFallbackException)
            {
                throw new QcowFormatException(path, $"header extension 0x{type:x8}", "text is not valid UTF-8");
            }
            at = (int)(at + 8 + ((length + 7L) & ~7L));
        }
        ext.FeatureNames = names;
        ext.UnknownTypes = unknown;
        ext.EndOffset = (int)Math.Min(at, Math.Min(end, firstCluster.Length));
        return ext;
    }

    /// <summary>The name the feature name table gives incompatible bit <paramref name="bit"/>, if any.</summary>
    public string? IncompatibleName(int bit)
    {
        foreach (var f in FeatureNames)
            if (f.Type == 0 && f.Bit == bit) return f.Name;
        return null;
    }
}
