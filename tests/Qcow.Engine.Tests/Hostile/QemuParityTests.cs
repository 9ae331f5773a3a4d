using System.Text.Json;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Testing;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// Every damaged image of the corpus (<see cref="MalformedCases"/>, and the damage qemu reads through) against qemu-img
/// 7.2: the same exit codes from info and check, the same corruptions, leaks and check errors in check's JSON, the same
/// map, and the same bytes for the current state and every snapshot, or both refuse. A case marked
/// <see cref="MalformedCase.Deliberate"/> is one of the differences the README lists: qemu reads, we refuse to read
/// (info and check still agree).
/// </summary>
public sealed class QemuParityTests(HostileImages bases) : IClassFixture<HostileImages>
{
    /// <summary>Every case of both lists.</summary>
    public static IEnumerable<object[]> AllNames =>
        MalformedCases.All.Select(c => c.Name).Concat(MalformedCases.Readable.Select(c => c.Name)).Select(n => new object[] { n });

    [SkippableTheory]
    [MemberData(nameof(AllNames))]
    public void Info_check_map_and_reads_agree_with_qemu_img(string name)
    {
        Qemu.Require();
        using var dir = new TempDir("parity-");
        var (c, path) = Damaged(name, dir);
        string before = FileHash.Sha256(path);
        var problems = new List<string>();

        // info: exit codes, and the snapshots qemu lists are the ones we list.
        var qemuInfo = Qemu.ImgAllow([0, 1], "info", "-U", "--output=json", path);
        var ourInfo = QcowProcess.Run("info", "--output=json", path);
        if (qemuInfo.ExitCode != ourInfo.ExitCode)
            problems.Add($"info: qemu-img exit {qemuInfo.ExitCode} ({qemuInfo.StdErr.Trim()}), qcow exit {ourInfo.ExitCode} ({ourInfo.StdErr.Trim()})");
        var snapshotIds = new List<string>();
        if (qemuInfo.ExitCode == 0)
        {
            var q = JsonDocument.Parse(qemuInfo.StdOut).RootElement;
            if (q.TryGetProperty("snapshots", out var snaps))
                snapshotIds.AddRange(snaps.EnumerateArray().Select(s => s.GetProperty("id").GetString()!));
            bool qemuCorrupt = q.GetProperty("format-specific").GetProperty("data").TryGetProperty("corrupt", out var qc) && qc.GetBoolean();
            if (ourInfo.ExitCode == 0)
            {
                var o = JsonDocument.Parse(ourInfo.StdOut).RootElement;
                var ourIds = o.TryGetProperty("snapshots", out var os) ? os.EnumerateArray().Select(s => s.GetProperty("id").GetString()!).ToList() : [];
                if (!ourIds.SequenceEqual(snapshotIds)) problems.Add($"info: snapshots qemu-img [{string.Join(",", snapshotIds)}], qcow [{string.Join(",", ourIds)}]");
                bool ourCorrupt = o.GetProperty("format-specific").GetProperty("data").GetProperty("corrupt").GetBoolean();
                if (ourCorrupt != qemuCorrupt) problems.Add($"info: corrupt qemu-img {qemuCorrupt}, qcow {ourCorrupt}");
            }
        }

        // check: exit code and the three counters.
        var qemuCheck = Qemu.ImgAllow([0, 1, 2, 3], "check", "--output=json", path);
        var ourCheck = QcowProcess.Run("check", "--output=json", path);
        if (qemuCheck.ExitCode != ourCheck.ExitCode)
            problems.Add($"check: qemu-img exit {qemuCheck.ExitCode}, qcow exit {ourCheck.ExitCode}\nqemu-img: {qemuCheck.StdOut}{qemuCheck.StdErr}\nqcow: {ourCheck.StdOut}{ourCheck.StdErr}");
        else if (Counts(qemuCheck.StdOut) is { } qc2 && Counts(ourCheck.StdOut) is { } oc && qc2 != oc)
            problems.Add($"check: qemu-img {qc2}, qcow {oc}\nqemu-img: {qemuCheck.StdOut}\nqcow: {ourCheck.StdOut}");

        // map and the bytes of every state.
        var qemuMap = Qemu.ImgAllow([0, 1], "map", "-U", "--output=json", path);
        var ourMap = QcowProcess.Run("map", "--output=json", path);
        var states = new List<StateRead>();
        states.Add(State(path, null, dir));
        foreach (var id in snapshotIds) states.Add(State(path, id, dir));

        // We never read what qemu refuses; where both read, the bytes (and the map) are qemu's. We refuse what qemu
        // reads only in a case marked as one of the README's deliberate differences, and such a case must show one.
        int refusedOnly = 0;
        if (qemuMap.ExitCode != 0 && ourMap.ExitCode == 0)
            problems.Add($"map: qemu-img refuses ({qemuMap.StdErr.Trim()}), qcow maps it");
        else if (qemuMap.ExitCode == 0 && ourMap.ExitCode != 0)
        {
            refusedOnly++;
            if (c.Deliberate is null) problems.Add($"map: qemu-img maps it, qcow refuses ({ourMap.StdErr.Trim()})");
        }
        else if (qemuMap.ExitCode == 0 && qemuMap.StdOut != ourMap.StdOut)
            problems.Add($"map differs:\nqemu-img: {qemuMap.StdOut}\nqcow: {ourMap.StdOut}");
        foreach (var s in states)
        {
            if (s.QemuExit != 0 && s.Read) problems.Add($"{s.What}: qemu-img refuses to read it, qcow reads it");
            else if (s.QemuExit == 0 && !s.Read)
            {
                refusedOnly++;
                if (c.Deliberate is null) problems.Add($"{s.What}: qemu-img reads it, qcow refuses: {s.OurError}");
            }
            else if (s.Qemu is not null && s.Ours is not null && !SamePrefixRestZero(s.Qemu, s.Ours)) problems.Add($"{s.What}: qcow reads other bytes than qemu-img");
        }
        if (c.Deliberate is not null && refusedOnly == 0)
            problems.Add($"marked as a deliberate difference ({c.Deliberate}), but qcow and qemu-img now agree");
        Assert.Equal(before, FileHash.Sha256(path));
        Assert.True(problems.Count == 0, $"{name}:\n{string.Join("\n", problems)}");
    }

    /// <summary>
    /// Damaged images qemu-img check can check, with its problem lines (refcounts too low or too high, bad flags and
    /// offsets, subcluster bitmaps), its summary (errors, leaks; an allocation line that rounds as C does, or none when
    /// nothing is allocated), and the corrupt bit.
    /// </summary>
    public static IEnumerable<object[]> CheckTextNames => new[]
    {
        "refcounts_wrong", "compressed_with_copied_flag", "l1_entry_reserved_bits", "l2_entry_unaligned", "l2_entry_reserved_bits",
        "l2_entry_onto_refcount_table", "snapshot_l1_offset_unaligned", "l1_table_offset_past_end", "xl2_partial_subclusters",
        "xl2_allocated_on_unallocated", "xl2_bitmap_on_compressed", "corrupt_bit", "dirty_bit",
    }.Select(n => new object[] { n });

    [SkippableTheory]
    [MemberData(nameof(CheckTextNames))]
    public void Check_text_prints_problems_on_stderr_and_the_summary_on_stdout_as_qemu_img(string name)
    {
        Qemu.Require();
        using var dir = new TempDir("check-text-");
        string path = Damaged(name, dir).Path;
        string Both(ProcessResult r) => $"stdout:\n{r.StdOut}stderr:\n{r.StdErr}";
        // The problem lines go to stderr with JSON output too (its stdout is compared by field in the test above).
        foreach (bool json in new[] { false, true })
        {
            string[] args = json ? ["check", "--output=json", path] : ["check", path];
            var qemu = Qemu.ImgAllow([0, 2, 3], args);
            var ours = QcowProcess.Run(args);
            Assert.Equal(qemu.ExitCode, ours.ExitCode);
            if (!json)
                Assert.True(Lines(qemu.StdOut).SequenceEqual(Lines(ours.StdOut)), $"stdout differs\nqemu-img {Both(qemu)}\nqcow {Both(ours)}");
            // Our warning about the corrupt bit is ours alone (qemu-img check says nothing of it).
            var ourProblems = Lines(ours.StdErr).Where(l => !l.StartsWith("qcow: warning: ", StringComparison.Ordinal));
            Assert.True(Lines(qemu.StdErr).SequenceEqual(ourProblems), $"stderr differs{(json ? " (json)" : "")}\nqemu-img {Both(qemu)}\nqcow {Both(ours)}");
        }
    }

    private static string[] Lines(string text) => text.Split('\n');

    /// <summary>The case named <paramref name="name"/>: its base image copied into <paramref name="dir"/> and damaged.</summary>
    private (MalformedCase Case, string Path) Damaged(string name, TempDir dir)
    {
        var c = MalformedCases.All.Concat(MalformedCases.Readable).Single(x => x.Name == name);
        string path = bases.CopyTo(c.Base, dir[$"{name}.qcow2"]);
        c.Damage(path, Layout.Of(path));
        return (c, path);
    }

    /// <summary>One state read by qemu-img convert and by our view (bytes kept up to <see cref="Exerciser.KeepLimit"/>).</summary>
    private static StateRead State(string path, string? snapshotId, TempDir dir)
    {
        string raw = dir[$"qemu-{snapshotId ?? "current"}.raw"];
        string[] args = snapshotId is null
            ? ["convert", "-U", "-O", "raw", path, raw]
            : ["convert", "-U", "-l", $"snapshot.id={snapshotId}", "-O", "raw", path, raw];
        int exit = Qemu.ImgAllow([0, 1], args).ExitCode;
        byte[]? qemu = exit == 0 && new FileInfo(raw).Length <= Exerciser.KeepLimit ? File.ReadAllBytes(raw) : null;
        File.Delete(raw);
        bool read = false;
        byte[]? ours = null;
        string? error = null;
        try
        {
            using var set = new ImageSet();
            var view = set.View(path, snapshotId is null ? null : $"snapshot.id={snapshotId}");
            ours = Exerciser.ReadAll(view, keep: view.Size <= Exerciser.KeepLimit);
            read = true;
        }
        catch (QcowException e)
        {
            error = e.Message;
        }
        return new StateRead(snapshotId is null ? "current state" : $"snapshot id {snapshotId}", exit, qemu, read, ours, error);
    }

    private sealed record StateRead(string What, int QemuExit, byte[]? Qemu, bool Read, byte[]? Ours, string? OurError);

    /// <summary>Equal over the shorter length, and the rest of the longer reads as zeros (snapshots keep their own size).</summary>
    private static bool SamePrefixRestZero(byte[] a, byte[] b)
    {
        int n = Math.Min(a.Length, b.Length);
        if (!a.AsSpan(0, n).SequenceEqual(b.AsSpan(0, n))) return false;
        var rest = a.Length > n ? a.AsSpan(n) : b.AsSpan(n);
        return !rest.ContainsAnyExcept((byte)0);
    }

    /// <summary>(corruptions, leaks, check-errors) from check's JSON, or null when it printed none.</summary>
    private static (long, long, long)? Counts(string json)
    {
        int start = json.IndexOf('{', StringComparison.Ordinal);
        if (start < 0) return null;
        try
        {
            var r = JsonDocument.Parse(json[start..]).RootElement;
            long Get(string k) => r.TryGetProperty(k, out var v) ? v.GetInt64() : 0;
            return (Get("corruptions"), Get("leaks"), Get("check-errors"));
        }
        catch (JsonException)
        {
            return null;
        }
    }
}
