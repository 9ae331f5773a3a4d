using System.Text;
using Qcow.Engine.IO;

namespace Qcow.Engine.Format;

/// <summary>One internal snapshot (spec: "Snapshots"), with its extra data.</summary>
public sealed class Snapshot
{
    /// <summary>Offset of the snapshot's L1 table.</summary>
    public ulong L1TableOffset { get; init; }
    /// <summary>Entries in the snapshot's L1 table.</summary>
    public uint L1Size { get; init; }
    /// <summary>The snapshot id (qemu numbers them "1", "2", ...).</summary>
    public required string Id { get; init; }
    /// <summary>The snapshot name (tag).</summary>
    public required string Name { get; init; }
    /// <summary>Creation time, seconds since the epoch.</summary>
    public uint DateSeconds { get; init; }
    /// <summary>Creation time, nanoseconds part.</summary>
    public uint DateNanoseconds { get; init; }
    /// <summary>Guest clock at the snapshot, in nanoseconds.</summary>
    public ulong VmClockNanoseconds { get; init; }
    /// <summary>Size of the saved VM state (vm_state_size_large when present).</summary>
    public ulong VmStateSize { get; init; }
    /// <summary>The virtual disk size when the snapshot was taken, or null when the extra data does not record it.</summary>
    public ulong? DiskSize { get; init; }
    /// <summary>Guest instruction count, or null (qemu shows -1 as empty).</summary>
    public long? Icount { get; init; }
    /// <summary>0-based position in the snapshot table.</summary>
    public int Index { get; init; }
}

/// <summary>Reads and validates the snapshot table.</summary>
public static class SnapshotTable
{
    /// <summary>Reads all snapshots listed by the header; <paramref name="tableLength"/> is the table's length in bytes.</summary>
    public static IReadOnlyList<Snapshot> Read(ImageFile file, QcowHeader header, out long tableLength)
    {
        string path = file.Path;
        var list = new List<Snapshot>((int)Math.Min(header.NbSnapshots, 1024));
        tableLength = 0;
        if (header.NbSnapshots == 0) return list;
        var utf8 = new UTF8Encoding(false, true);
        long at = (long)header.SnapshotsOffset;
        long tableStart = at;
        Span<byte> fixedPart = stackalloc byte[40];
        byte[] buffer = new byte[1024 + 2 * 65535 + 8];
        for (int i = 0; i < header.NbSnapshots; i++)
        {
            string field = $"snapshot table entry {i}";
            if (at - tableStart + 40 > QcowLimits.MaxSnapshotTableBytes)
                throw new QcowFormatException(path, "snapshots_offset", "the snapshot table is larger than qemu's 64 MiB limit");
            file.ReadExactly(at, fixedPart, field);
            ulong l1Offset = BigEndian.U64(fixedPart, 0);
            uint l1Size = BigEndian.U32(fixedPart, 8);
            ushort idLen = BigEndian.U16(fixedPart, 12);
            ushort nameLen = BigEndian.U16(fixedPart, 14);
            uint extraSize = BigEndian.U32(fixedPart, 36);
            if (extraSize > QcowLimits.MaxSnapshotExtraData)
                throw new QcowFormatException(path, field, $"extra_data_size {extraSize} is more than {QcowLimits.MaxSnapshotExtraData} bytes");
            if (header.Version >= 3 && extraSize < 16)
                throw new QcowFormatException(path, field, $"extra_data_size {extraSize}: version 3 images need at least 16 bytes of extra data");
            int varLen = (int)extraSize + idLen + nameLen;
            file.ReadExactly(at + 40, buffer.AsSpan(0, varLen), field);
            var extra = buffer.AsSpan(0, (int)extraSize);
            ulong vmState = BigEndian.U32(fixedPart, 32);
            ulong? diskSize = null;
            long? icount = null;
            if (extraSize >= 8) vmState = BigEndian.U64(extra, 0);
            if (extraSize >= 16) diskSize = BigEndian.U64(extra, 8);
            if (extraSize >= 24)
            {
                ulong ic = BigEndian.U64(extra, 16);
                icount = ic == ulong.MaxValue ? null : (long)ic;
            }
            string id, name;
            try
            {
                id = utf8.GetString(buffer, (int)extraSize, idLen);
                name = utf8.GetString(buffer, (int)extraSize + idLen, nameLen);
            }
            catch (DecoderFallbackException)
            {
                throw new QcowFormatException(path, field, "id or name is not valid UTF-8");
            }
            if ((ulong)l1Size * 8 > QcowLimits.MaxL1Bytes)
                throw new QcowFormatException(path, field, $"l1_size {l1Size} is more than qemu's 32 MiB L1 limit");
            if (l1Size > 0)
                QcowHeader.CheckTable(path, $"{field} l1_table_offset", l1Offset, (ulong)l1Size * 8, header.ClusterSize, file.Length);
            if (diskSize is { } ds)
            {
                if (ds > (ulong)QcowLimits.MaxVirtualSize)
                    throw new QcowFormatException(path, field, $"disk_size {ds} is too large");
                ulong l2Span = (ulong)header.L2Entries * (ulong)header.ClusterSize;
                if ((ds + l2Span - 1) / l2Span > l1Size)
                    throw new QcowFormatException(path, field, $"l1_size {l1Size} does not cover the snapshot's disk size {ds}");
            }
            list.Add(new Snapshot
            {
                L1TableOffset = l1Offset,
                L1Size = l1Size,
                Id = id,
                Name = name,
                DateSeconds = BigEndian.U32(fixedPart, 16),
                DateNanoseconds = BigEndian.U32(fixedPart, 20),
                VmClockNanoseconds = BigEndian.U64(fixedPart, 24),
                VmStateSize = vmState,
                DiskSize = diskSize,
                Icount = icount,
                Index = i,
            });
            at += (40 + varLen + 7) & ~7;
        }
        tableLength = at - tableStart;
        return list;
    }

    /// <summary>
    /// Finds a snapshot with qemu's rules: <c>snapshot.id=X</c>, <c>snapshot.name=X</c>, or a bare X tried as an id
    /// first, then as a name. Throws, listing the snapshots that exist, when none matches.
    /// </summary>
    public static Snapshot Find(IReadOnlyList<Snapshot> snapshots, string spec, string path)
    {
        Snapshot? found;
        if (spec.StartsWith("snapshot.id=", StringComparison.Ordinal))
            found = snapshots.FirstOrDefault(s => s.Id == spec["snapshot.id=".Length..]);
        else if (spec.StartsWith("snapshot.name=", StringComparison.Ordinal))
            found = snapshots.FirstOrDefault(s => s.Name == spec["snapshot.name=".Length..]);
        else
            found = snapshots.FirstOrDefault(s => s.Id == spec) ?? snapshots.FirstOrDefault(s => s.Name == spec);
        if (found is not null) return found;
        string have = snapshots.Count == 0
            ? "the image has no snapshots"
            : "snapshots are: " + string.Join(", ", snapshots.Select(s => $"{s.Name} (id {s.Id})"));
        throw new QcowException(path, $"snapshot '{spec}' not found; {have}");
    }
}
