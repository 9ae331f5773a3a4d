using Qcow.Engine.Chain;
using Qcow.Engine.Format;
using Qcow.Engine.IO;

namespace Qcow.Engine.Operations;

/// <summary>The outcome of <c>qcow check</c>, with qemu-img check's counters.</summary>
public sealed record CheckResult
{
    /// <summary>The image checked.</summary>
    public required string FileName { get; init; }
    /// <summary>Errors: refcounts too low, tables out of place, bad flags.</summary>
    public long Corruptions { get; init; }
    /// <summary>Clusters with a refcount but no reference.</summary>
    public long Leaks { get; init; }
    /// <summary>Problems that stopped part of the check.</summary>
    public long CheckErrors { get; init; }
    /// <summary>One line per problem found, in qemu-img's wording where it has one.</summary>
    public required IReadOnlyList<string> Messages { get; init; }
    /// <summary>Guest clusters in the virtual disk.</summary>
    public long TotalClusters { get; init; }
    /// <summary>Guest clusters allocated in the image's current state.</summary>
    public long AllocatedClusters { get; init; }
    /// <summary>Allocated clusters not contiguous with the previous one.</summary>
    public long FragmentedClusters { get; init; }
    /// <summary>Compressed clusters.</summary>
    public long CompressedClusters { get; init; }
    /// <summary>Offset just past the last used host cluster.</summary>
    public long ImageEndOffset { get; init; }

    /// <summary>qemu-img check's exit code: 0 clean, 2 corruptions, 3 leaks only, 1 could not check.</summary>
    public int ExitCode => CheckErrors > 0 ? 1 : Corruptions > 0 ? 2 : Leaks > 0 ? 3 : 0;
}

/// <summary>
/// <c>qcow check</c>: recounts every reference (header, refcount structures, L1 tables of the image and its snapshots,
/// L2 tables, data and compressed clusters, snapshot table, bitmaps) and compares with the stored refcounts, like
/// qemu-img check. Read-only: nothing is repaired.
/// </summary>
public static class CheckOperation
{
    /// <summary>Checks <paramref name="path"/>. Malformed headers throw <see cref="QcowFormatException"/>.</summary>
    public static CheckResult Run(string path)
    {
        using var image = QcowImage.Open(path);
        return new Checker(image).Run();
    }

    private sealed class Checker(QcowImage image)
    {
        private readonly List<string> _messages = [];
        private readonly QcowHeader _h = image.Header;
        private readonly long _fileClusters = (image.File.Length + image.Header.ClusterSize - 1) / image.Header.ClusterSize;
        private readonly Dictionary<long, ulong> _beyond = new();
        private ulong[] _refs = [];
        private long _corruptions, _leaks, _checkErrors;
        private long _allocated, _fragmented, _compressed;
        private long _maxEnd;

        public CheckResult Run()
        {
            if (_fileClusters > int.MaxValue / 2)
                throw new QcowException(image.Path, "image file too large to check");
            _refs = new ulong[_fileClusters];
            int cs = _h.ClusterSize;
            Count(0, cs, "header");
            Count((long)_h.RefcountTableOffset, _h.RefcountTableClusters * (long)cs, "refcount table");
            var refcounts = new RefcountTable(image);
            for (int i = 0; i < refcounts.Entries.Count; i++)
            {
                ulong rb = refcounts.Entries[i] & QcowLimits.OffsetMask;
                if (rb == 0) continue;
                if (rb % (ulong)cs != 0) { Corrupt($"ERROR refcount block {i} is not cluster aligned; refcount table entry corrupted"); continue; }
                if (rb >= (ulong)image.File.Length) { Corrupt($"ERROR refcount block {i} is outside image"); continue; }
                Count((long)rb, cs, $"refcount block {i}");
            }
            CheckL1(image.ActiveL1, (long)_h.L1TableOffset, active: true, refcounts, "active L1 table");
            if (_h.NbSnapshots > 0)
            {
                long tableEnd = SnapshotTableLength();
                Count((long)_h.SnapshotsOffset, tableEnd, "snapshot table");
                foreach (var s in image.Snapshots)
                    CheckL1(image.SnapshotL1(s), (long)s.L1TableOffset, active: false, refcounts, $"L1 table of snapshot '{s.Name}'");
            }
            CountBitmaps();

            for (long c = 0; c < _fileClusters; c++)
            {
                ulong? stored = refcounts.Get(c);
                if (stored is null) { _checkErrors++; _messages.Add($"ERROR cluster {c}: its refcount block is unusable"); continue; }
                ulong want = _refs[c];
                if (stored < want) Corrupt($"ERROR cluster {c} refcount={stored} reference={want}");
                else if (stored > want) { _leaks++; _messages.Add($"Leaked cluster {c} refcount={stored} reference={want}"); }
            }
            long totalGuest = ((long)_h.Size + cs - 1) / cs;
            return new CheckResult
            {
                FileName = image.Path,
                Corruptions = _corruptions,
                Leaks = _leaks,
                CheckErrors = _checkErrors,
                Messages = _messages,
                TotalClusters = totalGuest,
                AllocatedClusters = _allocated,
                FragmentedClusters = _fragmented,
                CompressedClusters = _compressed,
                ImageEndOffset = _maxEnd,
            };
        }

        private void CheckL1(ulong[] l1, long l1Offset, bool active, RefcountTable refcounts, string what)
        {
            int cs = _h.ClusterSize;
            if (l1.Length > 0) Count(l1Offset, l1.Length * 8L, what);
            long nextContiguous = -1;
            for (int i = 0; i < l1.Length; i++)
            {
                ulong l2 = l1[i] & QcowLimits.OffsetMask;
                if (l2 == 0) continue;
                Count((long)l2, cs, $"L2 table of {what} entry {i}");
                if (active) CheckCopied(l1[i], (long)l2, refcounts, $"L1 entry {i}");
                var raw = new byte[cs];
                image.File.ReadExactly((long)l2, raw, $"L2 table at 0x{l2:x}");
                int size = _h.L2EntrySize;
                for (int j = 0; j < _h.L2Entries; j++)
                {
                    ulong word = BigEndian.U64(raw, j * size);
                    ulong bitmap = size == 16 ? BigEndian.U64(raw, j * size + 8) : 0;
                    var e = new L2Entry(word, bitmap, size == 16, image.NeedsDataFile);
                    if (word == 0 && bitmap == 0) continue;
                    long guest = ((long)i * _h.L2Entries + j) * cs;
                    if (e.Problem(_h.Version, cs) is { } problem)
                    {
                        Corrupt($"ERROR L2 entry for guest offset 0x{guest:x}: {problem}");
                        continue;
                    }
                    if (e.IsCompressed)
                    {
                        var d = CompressedDescriptor.Decode(word, _h.ClusterBits);
                        if (active) { _allocated++; _compressed++; }
                        if (d.HostOffset >= (ulong)image.File.Length) { Corrupt($"ERROR compressed cluster at guest offset 0x{guest:x} lies past the end of the image"); continue; }
                        long first = (long)d.HostOffset / cs, last = ((long)d.HostOffset + d.Length - 1) / cs;
                        for (long c = first; c <= last; c++) AddRef(c);
                        _maxEnd = Math.Max(_maxEnd, (last + 1) * cs);
                        continue;
                    }
                    ulong host = e.HostOffset;
                    // Clusters in an external data file are not refcounted in the image (all have refcount 1).
                    if (image.NeedsDataFile)
                    {
                        if (active && (e.Kind is ClusterKind.Normal or ClusterKind.Mixed || host != 0)) _allocated++;
                        continue;
                    }
                    if (host == 0) continue;
                    if (active)
                    {
                        // qemu counts every cluster with a host offset, preallocated zero clusters included.
                        _allocated++;
                        if (nextContiguous >= 0 && (long)host != nextContiguous) _fragmented++;
                        nextContiguous = (long)host + cs;
                    }
                    if (host + (ulong)cs > (ulong)image.File.Length && host >= (ulong)image.File.Length)
                    {
                        Corrupt($"ERROR cluster at guest offset 0x{guest:x}: host offset 0x{host:x} is beyond the end of the image");
                        continue;
                    }
                    Count((long)host, cs, $"data cluster at guest offset 0x{guest:x}");
                    if (active) CheckCopied(word, (long)host, refcounts, $"data cluster at guest offset 0x{guest:x}");
                }
            }
        }

        private void CheckCopied(ulong entry, long host, RefcountTable refcounts, string what)
        {
            ulong? stored = refcounts.Get(host / _h.ClusterSize);
            if (stored is null) return;
            bool copied = (entry & L2Entry.CopiedFlag) != 0;
            if ((stored == 1) != copied)
                Corrupt($"ERROR OFLAG_COPIED {what}: entry=0x{entry:x} refcount={stored}");
        }

        private long SnapshotTableLength()
        {
            long at = (long)_h.SnapshotsOffset;
            Span<byte> fixedPart = stackalloc byte[40];
            for (int i = 0; i < _h.NbSnapshots; i++)
            {
                image.File.ReadExactly(at, fixedPart, "snapshot table");
                int varLen = (int)BigEndian.U32(fixedPart, 36) + BigEndian.U16(fixedPart, 12) + BigEndian.U16(fixedPart, 14);
                at += (40 + varLen + 7) & ~7;
            }
            return at - (long)_h.SnapshotsOffset;
        }

        private void CountBitmaps()
        {
            var ext = image.Extensions;
            if (ext.BitmapCount == 0 || ext.BitmapDirectorySize == 0) return;
            if (ext.BitmapDirectorySize > 64L << 20 || ext.BitmapDirectoryOffset + ext.BitmapDirectorySize > (ulong)image.File.Length)
            {
                Corrupt("ERROR bitmap directory lies outside the image");
                return;
            }
            Count((long)ext.BitmapDirectoryOffset, (long)ext.BitmapDirectorySize, "bitmap directory");
            var dir = new byte[ext.BitmapDirectorySize];
            image.File.ReadExactly((long)ext.BitmapDirectoryOffset, dir, "bitmap directory");
            int at = 0;
            for (int i = 0; i < ext.BitmapCount && at + 24 <= dir.Length; i++)
            {
                ulong tableOffset = BigEndian.U64(dir, at);
                uint tableSize = BigEndian.U32(dir, at + 8);
                ushort nameSize = BigEndian.U16(dir, at + 14);
                uint extra = BigEndian.U32(dir, at + 16);
                at += (int)((24 + extra + nameSize + 7) & ~7u);
                if (tableSize == 0 || tableOffset + tableSize * 8UL > (ulong)image.File.Length) continue;
                Count((long)tableOffset, tableSize * 8L, $"bitmap table {i}");
                var table = new byte[tableSize * 8L];
                image.File.ReadExactly((long)tableOffset, table, $"bitmap table {i}");
                for (int j = 0; j < tableSize; j++)
                {
                    ulong off = BigEndian.U64(table, j * 8) & QcowLimits.OffsetMask;
                    if (off != 0) Count((long)off, _h.ClusterSize, $"bitmap {i} data");
                }
            }
        }

        private void Count(long offset, long length, string what)
        {
            if (length <= 0) return;
            int cs = _h.ClusterSize;
            if (offset % cs != 0) { Corrupt($"ERROR {what} at 0x{offset:x} is not cluster aligned"); return; }
            long first = offset / cs, last = (offset + length - 1) / cs;
            for (long c = first; c <= last; c++) AddRef(c);
            _maxEnd = Math.Max(_maxEnd, (last + 1) * cs);
        }

        private void AddRef(long cluster)
        {
            if (cluster < _fileClusters) _refs[cluster]++;
            else
            {
                _beyond[cluster] = _beyond.GetValueOrDefault(cluster) + 1;
                if (_beyond[cluster] == 1) Corrupt($"ERROR cluster {cluster} is referenced but lies beyond the end of the image");
            }
        }

        private void Corrupt(string message)
        {
            _corruptions++;
            if (_messages.Count < 10000) _messages.Add(message);
        }
    }
}
