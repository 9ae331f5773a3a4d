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
    /// <summary>Bytes of extra data in the entry (version 3 needs at least 16; qemu-img check counts fewer as a corruption).</summary>
    public uint ExtraDataSize { get; init; }
    /// <summary>Where the entry starts in the file.</summary>
    public long EntryOffset { get; init; }
    /// <summary>The entry's length in bytes (40 plus extra data, id and name; without padding).</summary>
    public long EntryLength { get; init; }
    /// <summary>True when the entry's id or name cannot be trusted (not UTF-8, holding NUL bytes, past the end of the file).</summary>
    public bool HasDamagedName => ProblemField is "id" or "name" or "id_size" or "name_size" or "snapshots_offset";
    /// <summary>The field of a damaged entry (e.g. <c>l1_table_offset</c>), or null when the entry can be used.</summary>
    public string? ProblemField { get; init; }
    /// <summary>What is wrong with a damaged entry, or null. A damaged snapshot is listed, and refused when used.</summary>
    public string? Problem { get; init; }
    /// <summary>True when the entry can be read.</summary>
    public bool IsIntact => Problem is null;
    /// <summary>The error for using a damaged entry, naming the entry and the field.</summary>
    public QcowFormatException Damaged(string path) =>
        new(path, $"snapshot table entry {Index} ('{Name}', id {Id}) {ProblemField}", Problem ?? "damaged");
}

/// <summary>
/// Reads the snapshot table as qemu does when it opens an image: only what makes the table itself unreadable (more
/// than 1024 bytes of extra data in an entry, a table over 64 MiB) refuses the image. Each entry is then validated on
/// its own: a damaged one is listed with <see cref="Snapshot.Problem"/> and refused only when it is used.
/// </summary>
internal static class SnapshotTable
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
            // Past the end of the file qemu reads zeros; such an entry is listed, and refused when used.
            PastEnd.ReadZeroFilled(file, at, fixedPart);
            ulong l1Offset = BigEndian.U64(fixedPart, 0);
            uint l1Size = BigEndian.U32(fixedPart, 8);
            ushort idLen = BigEndian.U16(fixedPart, 12);
            ushort nameLen = BigEndian.U16(fixedPart, 14);
            uint extraSize = BigEndian.U32(fixedPart, 36);
            if (extraSize > QcowLimits.MaxSnapshotExtraData)
                throw new QcowFormatException(path, field, $"extra_data_size {extraSize} is more than {QcowLimits.MaxSnapshotExtraData} bytes");
            int varLen = (int)extraSize + idLen + nameLen;
            if (at - tableStart + 40 + varLen > QcowLimits.MaxSnapshotTableBytes)
                throw new QcowFormatException(path, "snapshots_offset", "the snapshot table is larger than qemu's 64 MiB limit");
            PastEnd.ReadZeroFilled(file, at + 40, buffer.AsSpan(0, varLen));
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
            var idBytes = buffer.AsSpan((int)extraSize, idLen);
            var nameBytes = buffer.AsSpan((int)extraSize + idLen, nameLen);
            var (problemField, problem) = EntryProblem(file, header, at, varLen, l1Offset, l1Size, diskSize, idBytes, nameBytes, utf8);
            list.Add(new Snapshot
            {
                L1TableOffset = l1Offset,
                L1Size = l1Size,
                // qemu keeps id and name as C strings: they end at the first NUL.
                Id = CString(idBytes),
                Name = CString(nameBytes),
                DateSeconds = BigEndian.U32(fixedPart, 16),
                DateNanoseconds = BigEndian.U32(fixedPart, 20),
                VmClockNanoseconds = BigEndian.U64(fixedPart, 24),
                VmStateSize = vmState,
                DiskSize = diskSize,
                Icount = icount,
                Index = i,
                ExtraDataSize = extraSize,
                EntryOffset = at,
                EntryLength = 40 + varLen,
                ProblemField = problemField,
                Problem = problem,
            });
            at += (40 + varLen + 7) & ~7;
        }
        tableLength = at - tableStart;
        return list;
    }

    /// <summary>What is wrong with one entry, as (field, message), or (null, null) when it can be used.</summary>
    private static (string?, string?) EntryProblem(ImageFile file, QcowHeader header, long at, int varLen, ulong l1Offset, uint l1Size,
        ulong? diskSize, ReadOnlySpan<byte> id, ReadOnlySpan<byte> name, UTF8Encoding utf8)
    {
        if (!PastEnd.Inside(file, (ulong)at, 40UL + (ulong)varLen))
            return (varLen > 0 && PastEnd.Inside(file, (ulong)at, 40) ? "name_size" : "snapshots_offset",
                $"the entry (40 + {varLen} bytes at 0x{at:x}) runs past the end of the file ({file.Length} bytes)");
        if (!IsUtf8(utf8, id)) return ("id", "the id is not valid UTF-8");
        if (!IsUtf8(utf8, name)) return ("name", "the name is not valid UTF-8");
        // qemu stops at the first NUL; a length that runs past it runs over whatever follows the entry.
        if (id.IndexOf((byte)0) >= 0) return ("id_size", $"{id.Length} runs past the id (it holds NUL bytes)");
        if (name.IndexOf((byte)0) >= 0) return ("name_size", $"{name.Length} runs past the name (it holds NUL bytes)");
        if (l1Offset % (ulong)header.ClusterSize != 0)
            return ("l1_table_offset", $"0x{l1Offset:x} is not cluster-aligned");
        if ((ulong)l1Size * 8 > QcowLimits.MaxL1Bytes)
            return ("l1_size", $"{l1Size} entries is more than qemu's 32 MiB L1 limit");
        if (l1Size > 0 && l1Offset == 0)
            return ("l1_table_offset", "0: the L1 table would be the header");
        if (l1Size > 0 && !PastEnd.Inside(file, l1Offset, (ulong)l1Size * 8))
            return ("l1_table_offset", $"the L1 table at 0x{l1Offset:x} ({l1Size * 8L} bytes) lies past the end of the file ({file.Length} bytes)");
        if (diskSize > (ulong)QcowLimits.MaxVirtualSize)
            return ("disk_size", $"{diskSize} is too large");
        // The L1 table (inside the file) must cover the disk size: that bounds the work of a read by the file's size.
        // qemu reads what lies beyond it as unallocated; we refuse the snapshot.
        ulong l2Span = (ulong)header.L2Entries * (ulong)header.ClusterSize;
        if (diskSize is { } ds && (ds + l2Span - 1) / l2Span > l1Size)
            return ("l1_size", $"{l1Size} entries do not cover the snapshot's disk size {ds}");
        return (null, null);
    }

    private static string CString(ReadOnlySpan<byte> bytes)
    {
        int nul = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul >= 0 ? bytes[..nul] : bytes);
    }

    private static bool IsUtf8(UTF8Encoding utf8, ReadOnlySpan<byte> bytes)
    {
        try
        {
            utf8.GetCharCount(bytes);
            return true;
        }
        catch (DecoderFallbackException)
        {
            return false;
        }
    }
}
