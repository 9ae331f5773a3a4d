using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>
/// An opened qcow2 file: header, extensions, snapshot table, and lookups through its L1/L2 tables. Read-only and
/// safe for parallel readers. Views (<see cref="Views.QcowView"/>) put a chosen L1 table and a backing chain on top.
/// </summary>
internal sealed class QcowImage : IDisposable
{
    private readonly L2TableCache _l2Cache;
    private readonly Dictionary<ulong, ulong[]> _l1Tables = new();
    private readonly Lock _l1Lock = new();
    private readonly Lazy<MetadataClusters> _metadata;

    private QcowImage(ImageFile file, QcowHeader header, HeaderExtensions extensions, string? backingFileName, IReadOnlyList<Snapshot> snapshots, long snapshotTableLength)
    {
        File = file;
        Header = header;
        Extensions = extensions;
        BackingFileName = backingFileName;
        Snapshots = snapshots;
        DataFile = file;
        _l2Cache = new L2TableCache(header.ClusterSize);
        SnapshotTableLength = snapshotTableLength;
        _metadata = new Lazy<MetadataClusters>(() => MetadataClusters.Of(this));
    }

    /// <summary>The file holding the metadata (and data, unless there is an external data file).</summary>
    public ImageFile File { get; }
    /// <summary>The validated header.</summary>
    public QcowHeader Header { get; }
    /// <summary>The header extensions.</summary>
    public HeaderExtensions Extensions { get; }
    /// <summary>The backing file name as stored in the image, or null.</summary>
    public string? BackingFileName { get; }
    /// <summary>The internal snapshots in table order.</summary>
    public IReadOnlyList<Snapshot> Snapshots { get; }
    /// <summary>The snapshot table's length in bytes, as qemu counts it (0 without snapshots).</summary>
    public long SnapshotTableLength { get; }
    /// <summary>The file guest data clusters live in: the external data file when there is one.</summary>
    public ImageFile DataFile { get; private set; }
    /// <summary>The path of this image's file.</summary>
    public string Path => File.Path;

    /// <summary>Opens <paramref name="path"/> read-only and validates its header and snapshot table.</summary>
    public static QcowImage Open(string path) => Open(path, forCheck: false);

    /// <summary>Opens <paramref name="path"/> read-only; <paramref name="forCheck"/> as qemu-img check opens it.</summary>
    public static QcowImage Open(string path, bool forCheck)
    {
        var file = ImageFile.Open(path);
        try
        {
            return Open(file, forCheck);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Wraps an opened file; takes ownership of it.</summary>
    public static QcowImage Open(ImageFile file, bool forCheck = false)
    {
        var header = QcowHeader.Read(file, out byte[] firstCluster);
        var extensions = HeaderExtensions.Parse(firstCluster, header, file.Path);
        header.Validate(file, extensions.IncompatibleName, forCheck);
        string? backing = header.ReadBackingFileName(firstCluster, file.Path);
        var snapshots = SnapshotTable.Read(file, header, out long snapshotTableLength);
        return new QcowImage(file, header, extensions, backing, snapshots, snapshotTableLength);
    }

    /// <summary>Attaches the external data file (opened by the chain resolver, which applies the path policy).</summary>
    internal void AttachDataFile(ImageFile dataFile) => DataFile = dataFile;

    /// <summary>True when the image names an external data file that must be attached before reading data.</summary>
    public bool NeedsDataFile => (Header.IncompatibleFeatures & IncompatibleFeatures.ExternalDataFile) != 0;

    /// <summary>True when qemu found the image damaged (incompatible bit 1); it is still read, read-only, as qemu does.</summary>
    public bool IsMarkedCorrupt => (Header.IncompatibleFeatures & IncompatibleFeatures.Corrupt) != 0;

    /// <summary>True when the image is encrypted (crypt_method, or the encryption header extension).</summary>
    public bool IsEncrypted => Header.CryptMethod != 0 || Extensions.HasEncryptionHeader;

    /// <summary>
    /// Refuses reading guest data when that cannot work: encrypted images, and the external data file bit without a
    /// data file name. The header, snapshots and refcounts can still be shown and checked, as qemu-img does.
    /// </summary>
    public void EnsureDataReadable()
    {
        if (IsEncrypted)
            throw new QcowFormatException(Path, "crypt_method", $"guest data is encrypted ({(Header.CryptMethod == 1 ? "AES" : Header.CryptMethod == 2 ? "LUKS" : "encryption header extension")}); reading encrypted images is not supported");
        if (NeedsDataFile && Extensions.ExternalDataFile is null)
            throw new QcowFormatException(Path, "incompatible_features", "the external data file bit is set but no data file name is recorded, so guest data cannot be found");
        // As qemu ("data-file-raw requires a data file"): the bit says guest data lies in a data file there is not.
        if (!NeedsDataFile && (Header.AutoclearFeatures & AutoclearFeatures.RawExternalData) != 0)
            throw new QcowFormatException(Path, "autoclear_features", "data-file-raw (bit 1) is set but the image has no external data file");
    }

    /// <summary>The active L1 table.</summary>
    public ulong[] ActiveL1 => GetL1(Header.L1TableOffset, Header.L1Size, "l1_table_offset");

    /// <summary>The L1 table of <paramref name="snapshot"/>; a damaged entry is refused here, naming the entry and field.</summary>
    public ulong[] SnapshotL1(Snapshot snapshot)
    {
        if (!snapshot.IsIntact) throw snapshot.Damaged(Path);
        return GetL1(snapshot.L1TableOffset, snapshot.L1Size, $"L1 table of snapshot '{snapshot.Name}'");
    }

    private ulong[] GetL1(ulong offset, uint size, string what)
    {
        lock (_l1Lock)
        {
            if (_l1Tables.TryGetValue(offset, out var cached) && cached.Length == size) return cached;
        }
        var table = new ulong[size];
        if (size > 0)
        {
            var bytes = new byte[size * 8L];
            File.ReadExactly((long)offset, bytes, what);
            // One L1 table never maps two guest ranges through the same L2 table (qemu-img check calls that a refcount
            // error). Refusing it bounds the work of a read by the file's size: a small file could otherwise make a
            // huge virtual disk look densely mapped, one L2 table repeated over the whole L1.
            var seen = new Dictionary<ulong, int>();
            for (int i = 0; i < table.Length; i++)
            {
                ulong e = BigEndian.U64(bytes, i * 8);
                ulong l2 = e & QcowLimits.OffsetMask;
                // Reserved bits are ignored when reading, as qemu does; qemu-img check (and ours) counts them.
                if (l2 != 0)
                {
                    if (l2 % (ulong)Header.ClusterSize != 0)
                        throw new QcowFormatException(Path, what, $"L1 entry {i}: L2 table offset 0x{l2:x} is not cluster-aligned");
                    if (l2 + (ulong)Header.ClusterSize > (ulong)File.Length)
                    {
                        // A table that starts inside the file but runs past its end may be sitting on other metadata.
                        if (l2 < (ulong)File.Length && _metadata.Value.Owner(l2) is { } owner && owner != MetadataClusters.L2Table)
                            throw new QcowFormatException(Path, what, $"L1 entry {i}: L2 table offset 0x{l2:x} lies in the {owner}");
                        throw new QcowFormatException(Path, what, $"L1 entry {i}: L2 table offset 0x{l2:x} lies past the end of the file");
                    }
                    if (!seen.TryAdd(l2, i))
                        throw new QcowFormatException(Path, what, $"L1 entries {seen[l2]} and {i} both point to the L2 table at 0x{l2:x}");
                }
                table[i] = e;
            }
        }
        lock (_l1Lock) _l1Tables[offset] = table;
        return table;
    }

    /// <summary>Looks up the L2 entry for guest cluster <paramref name="guestCluster"/> through <paramref name="l1"/>.</summary>
    public L2Entry Lookup(ulong[] l1, long guestCluster)
    {
        if (L2Table(l1, guestCluster) is { } table) return Entry(table, guestCluster);
        return guestCluster / Header.L2Entries >= l1.Length ? default : new L2Entry(0, 0, Header.ExtendedL2);
    }

    /// <summary>
    /// The L2 table (decoded words) that maps guest cluster <paramref name="guestCluster"/> through
    /// <paramref name="l1"/>, or null where the L1 entry is zero or past the table. A reader walking guest order takes
    /// the table once and reads its entries with <see cref="Entry"/>: one cache lookup per table, not per cluster.
    /// </summary>
    public ulong[]? L2Table(ulong[] l1, long guestCluster)
    {
        long l2Index = guestCluster / Header.L2Entries;
        if (l2Index >= l1.Length) return null;
        ulong l2Offset = l1[l2Index] & QcowLimits.OffsetMask;
        if (l2Offset == 0) return null;
        if (_metadata.Value.Owner(l2Offset) is { } owner && owner != MetadataClusters.L2Table)
            throw new QcowFormatException(Path, $"L1 entry {l2Index}", $"L2 table offset 0x{l2Offset:x} lies in the {owner}");
        return _l2Cache.Get(File, l2Offset, Header.ClusterSize);
    }

    /// <summary>
    /// The entry for guest cluster <paramref name="guestCluster"/> in <paramref name="table"/> (the one
    /// <see cref="L2Table"/> gave for that cluster), refused naming the guest offset when qemu would refuse it.
    /// </summary>
    public L2Entry Entry(ulong[] table, long guestCluster)
    {
        int i = (int)(guestCluster % Header.L2Entries);
        bool external = NeedsDataFile;
        var entry = Header.ExtendedL2 ? new L2Entry(table[2 * i], table[2 * i + 1], true, external) : new L2Entry(table[i], 0, false, external);
        if (entry.Word != 0 || entry.Bitmap != 0)
        {
            if (entry.Problem(Header.Version, Header.ClusterSize) is { } problem)
                throw new QcowFormatException(Path, $"L2 entry for guest offset 0x{guestCluster << Header.ClusterBits:x}", problem);
            CheckPlacement(entry, guestCluster);
        }
        return entry;
    }

    /// <summary>
    /// Refuses guest data that starts past the end of the file or inside metadata (see <see cref="MetadataClusters"/>).
    /// Zero clusters are not read, so a host offset they keep is not checked; a data cluster that only ends past the
    /// end of the file reads as zeros there, as in qemu.
    /// </summary>
    private void CheckPlacement(in L2Entry entry, long guestCluster)
    {
        // With an external data file, host offsets are in that file, which holds no metadata.
        if (!ReferenceEquals(DataFile, File)) return;
        ulong host;
        string what;
        if (entry.IsCompressed)
        {
            host = CompressedDescriptor.Decode(entry.Word, Header.ClusterBits).HostOffset;
            what = $"compressed cluster at guest offset 0x{guestCluster << Header.ClusterBits:x}";
        }
        else if (entry.Kind is ClusterKind.Normal or ClusterKind.Mixed && entry.HostOffset != 0)
        {
            host = entry.HostOffset;
            what = $"L2 entry for guest offset 0x{guestCluster << Header.ClusterBits:x}";
        }
        else
        {
            return;
        }
        if (host >= (ulong)File.Length)
            throw new QcowFormatException(Path, what, $"host offset 0x{host:x} lies past the end of the file ({File.Length} bytes)");
        if (_metadata.Value.Owner(host) is { } owner)
            throw new QcowFormatException(Path, what, $"host offset 0x{host:x} lies in the {owner}");
    }

    /// <summary>
    /// Reads a compressed cluster into <paramref name="cluster"/> with <paramref name="decompress"/> (the codec
    /// <see cref="QcowHeader.CompressionType"/> names), or throws naming the entry.
    /// </summary>
    public void ReadCompressed(ulong word, long guestCluster, Span<byte> cluster, ClusterDecompressor decompress)
    {
        var d = CompressedDescriptor.Decode(word, Header.ClusterBits);
        string what = $"compressed cluster at guest offset 0x{guestCluster << Header.ClusterBits:x}";
        if (d.HostOffset >= (ulong)File.Length)
            throw new QcowFormatException(Path, what, $"stream offset 0x{d.HostOffset:x} lies past the end of the file");
        // The last stream may end before its last counted sector when the file ends there.
        long length = Math.Min(d.Length, File.Length - (long)d.HostOffset);
        byte[] rented = System.Buffers.ArrayPool<byte>.Shared.Rent((int)Math.Max(length, 1));
        try
        {
            File.ReadExactly((long)d.HostOffset, rented.AsSpan(0, (int)length), what);
            if (decompress(rented.AsSpan(0, (int)length), cluster) is { } error)
                throw new QcowFormatException(Path, what, error);
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (!ReferenceEquals(DataFile, File)) DataFile.Dispose();
        File.Dispose();
    }
}
