namespace Qcow.Engine.Format;

/// <summary>Incompatible feature bits (header bytes 72..79, v3).</summary>
[Flags]
public enum IncompatibleFeatures : ulong
{
    /// <summary>No bits set.</summary>
    None = 0,
    /// <summary>Refcounts may be stale (lazy refcounts); reading is still safe.</summary>
    Dirty = 1 << 0,
    /// <summary>qemu found corruption; the image must not be used.</summary>
    Corrupt = 1 << 1,
    /// <summary>Guest data lives in an external data file.</summary>
    ExternalDataFile = 1 << 2,
    /// <summary>The compression_type header field is not deflate.</summary>
    CompressionType = 1 << 3,
    /// <summary>L2 entries are 16 bytes with a 32-subcluster bitmap.</summary>
    ExtendedL2 = 1 << 4,
    /// <summary>Every bit this engine understands.</summary>
    Known = Dirty | Corrupt | ExternalDataFile | CompressionType | ExtendedL2,
}

/// <summary>Compatible feature bits (header bytes 80..87, v3).</summary>
[Flags]
public enum CompatibleFeatures : ulong
{
    /// <summary>No bits set.</summary>
    None = 0,
    /// <summary>Refcount updates may be deferred (qemu sets the dirty bit while open).</summary>
    LazyRefcounts = 1 << 0,
}

/// <summary>Autoclear feature bits (header bytes 88..95, v3).</summary>
[Flags]
public enum AutoclearFeatures : ulong
{
    /// <summary>No bits set.</summary>
    None = 0,
    /// <summary>The bitmaps extension is consistent.</summary>
    Bitmaps = 1 << 0,
    /// <summary>The external data file is a valid raw image (guest offset == host offset).</summary>
    RawExternalData = 1 << 1,
}

/// <summary>How compressed clusters are encoded (header byte 104).</summary>
public enum CompressionType : byte
{
    /// <summary>Raw deflate with a 4 KiB window (qemu's "zlib").</summary>
    Deflate = 0,
    /// <summary>A zstd frame.</summary>
    Zstd = 1,
}

/// <summary>Names of header field values as qemu-img prints them.</summary>
public static class CompressionTypeNames
{
    /// <summary>qemu-img's name for a compression type: <c>zlib</c> or <c>zstd</c>.</summary>
    public static string QemuName(this CompressionType type) => type == CompressionType.Zstd ? "zstd" : "zlib";
}
