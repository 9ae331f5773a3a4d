using Qcow.Engine.Chain;
using Qcow.Engine.Format;
using Qcow.Engine.IO;

namespace Qcow.Engine.Operations;

/// <summary>
/// <c>qcow check</c>: recounts every reference the way qemu-img check 7.2 does (header, L1 tables of the image and its
/// snapshots, L2 tables, data and compressed clusters, snapshot table, refcount table and blocks, bitmaps), compares
/// with the stored refcounts and checks the COPIED flags, so that its corruptions, leaks and check errors are qemu's.
/// Tables are read as qemu reads them: past the end of the file, as zeros. Read-only: nothing is repaired.
/// </summary>
public static class CheckOperation
{
    private const ulong L1ReservedMask = 0x7f00_0000_0000_01ffUL;

    /// <summary>
    /// Checks the request's image. An image qemu would not open throws <see cref="QcowFormatException"/>;
    /// <see cref="CheckRequest.Warning"/> receives warnings (the corrupt bit). It reads metadata only:
    /// <paramref name="progress"/> hears nothing, and <paramref name="cancel"/> is checked before it starts.
    /// </summary>
    public static CheckResult Run(CheckRequest request, Action<ProgressInfo>? progress = null, CancellationToken cancel = default)
    {
        cancel.ThrowIfCancellationRequested();
        string path = request.Image;
        var warning = request.Warning;
        using var image = QcowImage.Open(path, forCheck: true);
        // qemu-img check opens the image as for reading: the key of an encrypted image and the data file are needed.
        image.EnsureDataReadable();
        if (image.IsMarkedCorrupt)
            warning?.Invoke(new QcowWarning(image.Path, "the corrupt bit is set (qemu found this image damaged); checked read-only, nothing is repaired"));
        return new Checker(image).Run();
    }

    private sealed class Checker(QcowImage image)
    {
        private readonly List<string> _messages = [];
        private readonly QcowHeader _h = image.Header;
        private readonly long _fileLength = image.File.Length;
        private readonly int _cs = image.Header.ClusterSize;
        private readonly ulong _refcountMax = image.Header.RefcountOrder >= 6 ? ulong.MaxValue : (1UL << image.Header.RefcountBits) - 1;
        private ulong[] _refs = [];
        private long _size;
        private long _corruptions, _leaks, _checkErrors;
        private long _allocated, _fragmented, _compressed;

        public CheckResult Run()
        {
            long fileClusters = (_fileLength + _cs - 1) / _cs;
            if (fileClusters > int.MaxValue / 2)
                throw new QcowException(image.Path, "image file too large to check");
            // One more slot: a reference may run up to one cluster past the end of the file.
            _refs = new ulong[fileClusters + 1];
            _size = fileClusters;
            var refcounts = new RefcountTable(image);

            // qemu checks the snapshot table first: version 3 entries need 16 bytes of extra data. An id or name we
            // cannot trust is not qemu-img check's concern (it prints nothing for it): info lists such an entry.
            foreach (var s in image.Snapshots)
                if (_h.Version >= 3 && s.ExtraDataSize < 16) Corrupt($"ERROR snapshot table entry {s.Index} is incomplete");

            Reference(0, (ulong)_cs);
            CheckL1(_h.L1TableOffset, _h.L1Size, active: true);
            // Snapshots that share an L1 table count it (and all it names) once each; it is read once.
            var shared = image.Snapshots.GroupBy(s => (s.L1TableOffset, s.L1Size)).ToDictionary(g => g.Key, g => g.Count());
            foreach (var s in image.Snapshots)
            {
                if (s.L1TableOffset % (ulong)_cs != 0)
                {
                    Corrupt($"ERROR snapshot {s.Id} ({s.Name}) l1_offset=0x{s.L1TableOffset:x}: L1 table is not cluster aligned; snapshot table entry corrupted");
                    continue;
                }
                if ((ulong)s.L1Size * 8 > QcowLimits.MaxL1Bytes)
                {
                    Corrupt($"ERROR snapshot {s.Id} ({s.Name}) l1_size=0x{s.L1Size:x}: L1 table is too large; snapshot table entry corrupted");
                    continue;
                }
                if (shared.Remove((s.L1TableOffset, s.L1Size), out int n)) CheckL1(s.L1TableOffset, s.L1Size, active: false, n);
            }
            Reference(_h.SnapshotsOffset, (ulong)image.SnapshotTableLength);
            Reference(_h.RefcountTableOffset, (ulong)_h.RefcountTableClusters * (ulong)_cs);
            CountBitmaps();
            CheckRefcountBlocks(refcounts);

            long highest = 0;
            for (long c = 0; c < _size; c++)
            {
                ulong? stored = refcounts.Get(c);
                if (stored is null)
                {
                    _checkErrors++;
                    Note($"Can't get refcount for cluster {c}: its refcount block is not cluster aligned");
                    continue;
                }
                ulong want = _refs[c];
                if (stored > 0 || want > 0) highest = c;
                if (stored < want) Corrupt($"ERROR cluster {c} refcount={stored} reference={want}");
                else if (stored > want) { _leaks++; Note($"Leaked cluster {c} refcount={stored} reference={want}"); }
            }
            CheckCopiedFlags(refcounts);

            return new CheckResult
            {
                FileName = image.Path,
                Corruptions = _corruptions,
                Leaks = _leaks,
                CheckErrors = _checkErrors,
                Messages = _messages,
                TotalClusters = ((long)_h.Size + _cs - 1) / _cs,
                AllocatedClusters = _allocated,
                FragmentedClusters = _fragmented,
                CompressedClusters = _compressed,
                ImageEndOffset = (highest + 1) * _cs,
            };
        }

        /// <summary>qemu's check_refcounts_l1 for an L1 table named <paramref name="n"/> times.</summary>
        private void CheckL1(ulong l1Offset, uint l1Size, bool active, int n = 1)
        {
            Reference(l1Offset, l1Size * 8UL, n);
            if (l1Size == 0) return;
            var table = ReadTable(l1Offset, l1Size * 8L);
            // An L2 table named n times counts n times, as in qemu; it is read once, so a small file cannot make
            // the check scan one table over and over (qemu-img check does).
            var times = new Dictionary<ulong, int>();
            for (int i = 0; i < l1Size; i++)
            {
                ulong e = BigEndian.U64(table, i * 8);
                if ((e & L1ReservedMask) != 0) Corrupt($"ERROR found L1 entry with reserved bits set: {e:x}", n);
                ulong l2 = e & QcowLimits.OffsetMask;
                if (l2 != 0) times[l2] = times.GetValueOrDefault(l2) + n;
            }
            for (int i = 0; i < l1Size; i++)
            {
                ulong l2 = BigEndian.U64(table, i * 8) & QcowLimits.OffsetMask;
                if (l2 == 0 || !times.Remove(l2, out int named)) continue;
                Reference(l2, (ulong)_cs, named);
                if (l2 % (ulong)_cs != 0) Corrupt($"ERROR l2_offset={l2:x}: Table is not cluster aligned; L1 entry corrupted", named);
                CheckL2(l2, active, named);
            }
        }

        /// <summary>
        /// The references and checks of one L2 table, <paramref name="n"/> times over. As in qemu, a cluster is
        /// fragmented when it does not follow the previous one of the same table (each table starts afresh), and
        /// every compressed cluster is.
        /// </summary>
        private void CheckL2(ulong l2Offset, bool active, int n)
        {
            long nextContiguous = 0;
            // Past the end of the file the table reads as zeros: nothing to count.
            if (l2Offset >= (ulong)_fileLength) return;
            var table = ReadTable(l2Offset, _cs);
            int size = _h.L2EntrySize;
            bool external = image.NeedsDataFile;
            for (int j = 0; j < _h.L2Entries; j++)
            {
                var entry = new L2Entry(BigEndian.U64(table, j * size), size == 16 ? BigEndian.U64(table, j * size + 8) : 0, size == 16, external);
                ulong word = entry.Word;
                ulong bitmap = entry.Bitmap;
                var type = entry.QemuType;
                if (type != QemuClusterType.Compressed && (word & L2Entry.ReservedMask) != 0)
                    Corrupt($"ERROR found l2 entry with reserved bits set: {word:x}", n);
                switch (type)
                {
                    case QemuClusterType.Compressed:
                    {
                        if ((word & L2Entry.CopiedFlag) != 0)
                        {
                            Corrupt($"ERROR: coffset=0x{CompressedDescriptor.Decode(word, _h.ClusterBits).HostOffset:x}: copied flag must never be set for compressed clusters", n);
                            word &= ~L2Entry.CopiedFlag;
                        }
                        if (external) { Corrupt($"ERROR compressed cluster {j} with data file", n); break; }
                        if (bitmap != 0) { Corrupt($"ERROR compressed cluster {j} with non-zero subcluster allocation bitmap, entry=0x{word:x}", n); break; }
                        var d = CompressedDescriptor.Decode(word, _h.ClusterBits);
                        Reference(d.HostOffset, (ulong)d.Length, n);
                        if (active) { _allocated += n; _compressed += n; _fragmented += n; }
                        break;
                    }
                    case QemuClusterType.ZeroAllocated:
                    case QemuClusterType.Normal:
                    {
                        ulong offset = entry.HostOffset;
                        if (size == 16 && ((bitmap >> 32) & bitmap) != 0)
                            Corrupt($"ERROR offset={offset:x}: Allocated cluster has corrupted subcluster allocation bitmap", n);
                        if (offset % (ulong)_cs != 0)
                        {
                            bool data = size == 16 ? (uint)bitmap != 0 : (word & L2Entry.ZeroFlag) == 0;
                            Corrupt(data
                                ? $"ERROR offset={offset:x}: Data cluster is not properly aligned; L2 entry corrupted."
                                : $"ERROR offset={offset:x}: Preallocated cluster is not properly aligned; L2 entry corrupted.", n);
                        }
                        if (active)
                        {
                            _allocated += n;
                            if (nextContiguous != 0 && (long)offset != nextContiguous) _fragmented += n;
                            nextContiguous = (long)offset + _cs;
                        }
                        // Clusters in an external data file are not refcounted in the image.
                        if (!external) Reference(offset, (ulong)_cs, n);
                        break;
                    }
                    case QemuClusterType.Unallocated:
                        if (size == 16 && (uint)bitmap != 0)
                            Corrupt("ERROR: Unallocated cluster has non-zero subcluster allocation map", n);
                        break;
                }
            }
        }

        private void CheckRefcountBlocks(RefcountTable refcounts)
        {
            for (int i = 0; i < refcounts.Entries.Count; i++)
            {
                ulong e = refcounts.Entries[i];
                ulong offset = e & RefcountTable.EntryOffsetMask;
                if ((e & ~RefcountTable.EntryOffsetMask) != 0) { Corrupt($"ERROR refcount table entry {i} has reserved bits set"); continue; }
                if (offset % (ulong)_cs != 0) { Corrupt($"ERROR refcount block {i} is not cluster aligned; refcount table entry corrupted"); continue; }
                ulong cluster = offset / (ulong)_cs;
                if (cluster >= (ulong)_size) { Corrupt($"ERROR refcount block {i} is outside image"); continue; }
                if (offset == 0) continue;
                Reference(offset, (ulong)_cs);
                if (_refs[cluster] != 1) Corrupt($"ERROR refcount block {i} refcount={_refs[cluster]}");
            }
        }

        /// <summary>qemu's check_oflag_copied over the active L1 table as qemu loads it.</summary>
        private void CheckCopiedFlags(RefcountTable refcounts)
        {
            if (_h.L1Size == 0) return;
            var l1 = ReadTable(_h.L1TableOffset, _h.L1Size * 8L);
            int size = _h.L2EntrySize;
            for (int i = 0; i < _h.L1Size; i++)
            {
                ulong e = BigEndian.U64(l1, i * 8);
                ulong l2 = e & QcowLimits.OffsetMask;
                if (l2 == 0) continue;
                ulong? rc = refcounts.Get((long)(l2 / (ulong)_cs));
                if (rc is null) continue;
                if ((rc == 1) != ((e & L2Entry.CopiedFlag) != 0))
                    Corrupt($"ERROR OFLAG_COPIED L2 cluster: l1_index={i} l1_entry={e:x} refcount={rc}");
                var table = ReadTable(l2, _cs);
                for (int j = 0; j < _h.L2Entries; j++)
                {
                    var entry = new L2Entry(BigEndian.U64(table, j * size), 0, size == 16, image.NeedsDataFile);
                    ulong word = entry.Word;
                    if (entry.QemuType is not (QemuClusterType.Normal or QemuClusterType.ZeroAllocated)) continue;
                    ulong? drc = image.NeedsDataFile ? 1 : refcounts.Get((long)(entry.HostOffset / (ulong)_cs));
                    if (drc is null) continue;
                    if ((drc == 1) != ((word & L2Entry.CopiedFlag) != 0))
                        Corrupt($"ERROR OFLAG_COPIED data cluster: l2_entry={word:x} refcount={drc}");
                }
            }
        }

        private void CountBitmaps()
        {
            var ext = image.Extensions;
            if (ext.BitmapCount == 0 || ext.BitmapDirectorySize == 0) return;
            if (ext.BitmapDirectorySize > 64L << 20)
            {
                Corrupt("ERROR bitmap directory is too large");
                return;
            }
            Reference(ext.BitmapDirectoryOffset, ext.BitmapDirectorySize);
            var dir = ReadTable(ext.BitmapDirectoryOffset, (long)ext.BitmapDirectorySize);
            int at = 0;
            for (int i = 0; i < ext.BitmapCount && at + 24 <= dir.Length; i++)
            {
                ulong tableOffset = BigEndian.U64(dir, at);
                uint tableSize = BigEndian.U32(dir, at + 8);
                ushort nameSize = BigEndian.U16(dir, at + 14);
                uint extra = BigEndian.U32(dir, at + 16);
                at += (int)((24 + extra + nameSize + 7) & ~7u);
                if (tableSize == 0 || tableSize > QcowLimits.MaxL1Bytes / 8) continue;
                Reference(tableOffset, tableSize * 8UL);
                var table = ReadTable(tableOffset, tableSize * 8L);
                for (int j = 0; j < tableSize; j++)
                {
                    ulong off = BigEndian.U64(table, j * 8) & QcowLimits.OffsetMask;
                    if (off != 0) Reference(off, (ulong)_cs);
                }
            }
        }

        /// <summary>A table as qemu reads it: whatever lies past the end of the file reads as zeros.</summary>
        private byte[] ReadTable(ulong offset, long length)
        {
            var bytes = new byte[length];
            if (offset < (ulong)_fileLength) PastEnd.ReadZeroFilled(image.File, (long)offset, bytes);
            return bytes;
        }

        /// <summary>
        /// qemu's qcow2_inc_refcounts_imrt, <paramref name="n"/> times: one more reference to every cluster of the
        /// range; a range that ends a cluster or more past the end of the file is a corruption and counts nothing, and
        /// so is each reference past the refcount's maximum.
        /// </summary>
        private void Reference(ulong offset, ulong length, int n = 1)
        {
            if (length == 0) return;
            if ((Int128)offset + length - _fileLength >= _cs)
            {
                Corrupt($"ERROR: counting reference for region exceeding the end of the file by one cluster or more: offset 0x{offset:x} size 0x{length:x}", n);
                return;
            }
            long first = (long)(offset / (ulong)_cs), last = (long)((offset + length - 1) / (ulong)_cs);
            for (long c = first; c <= last; c++)
            {
                if (c >= _size) _size = c + 1;
                ulong room = _refcountMax - _refs[c];
                if ((ulong)n > room)
                {
                    Corrupt($"ERROR: overflow cluster offset=0x{c * _cs:x}", (long)((ulong)n - room));
                    _refs[c] = _refcountMax;
                    continue;
                }
                _refs[c] += (ulong)n;
            }
        }

        private void Corrupt(string message, long n = 1)
        {
            _corruptions += n;
            Note(message);
        }

        private void Note(string message)
        {
            if (_messages.Count < 10000) _messages.Add(message);
        }
    }
}
