using System.Text.Json.Nodes;
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

        // info: the exit code; where both describe the image, the same JSON (by value) and the same text, line for line,
        // but for what we add on a snapshot (its disk size; what makes a damaged entry unreadable).
        var qemuInfo = Qemu.ImgAllow([0, 1], "info", "-U", "--output=json", path);
        var ourInfo = QcowProcess.Run("info", "--output=json", path);
        if (qemuInfo.ExitCode != ourInfo.ExitCode)
            problems.Add($"info: qemu-img exit {qemuInfo.ExitCode} ({qemuInfo.StdErr.Trim()}), qcow exit {ourInfo.ExitCode} ({ourInfo.StdErr.Trim()})");
        var snapshotIds = new List<string>();
        if (qemuInfo.ExitCode == 0)
        {
            var q = JsonNode.Parse(qemuInfo.StdOut)!;
            if (q["snapshots"] is JsonArray snaps) snapshotIds.AddRange(snaps.Select(s => (string)s!["id"]!));
            if (ourInfo.ExitCode == 0)
            {
                var o = JsonNode.Parse(ourInfo.StdOut)!;
                foreach (var s in (o["snapshots"] as JsonArray ?? []).Cast<JsonObject>())
                {
                    s.Remove("disk-size");
                    s.Remove("damaged");
                }
                if (!JsonNode.DeepEquals(q, o)) problems.Add($"info --output=json differs\nqemu-img:\n{qemuInfo.StdOut}\nqcow:\n{ourInfo.StdOut}");
                var qemuText = Qemu.Img("info", "-U", path).StdOut;
                var ourText = QcowProcess.Run("info", path).StdOut;
                var ourLines = Lines(ourText).Where(l => !l.StartsWith("Damaged snapshot table entry ", StringComparison.Ordinal));
                if (!Lines(qemuText).SequenceEqual(ourLines)) problems.Add($"info differs\nqemu-img:\n{qemuText}\nqcow:\n{ourText}");
            }
        }

        // check, in both output formats: the exit code, stdout byte for byte (the summary) and, where qemu-img completes
        // the check (exit 0, 2 or 3), each problem line on stderr. Where it cannot (exit 1) its error is its own and
        // ours names the file and the field.
        foreach (bool json in new[] { true, false })
        {
            string[] args = json ? ["check", "--output=json", path] : ["check", path];
            var qemuCheck = Qemu.ImgAllow([0, 1, 2, 3], args);
            var ourCheck = QcowProcess.Run(args);
            string both = $"\nqemu-img: exit {qemuCheck.ExitCode}\nstdout:\n{qemuCheck.StdOut}stderr:\n{qemuCheck.StdErr}" +
                $"\nqcow: exit {ourCheck.ExitCode}\nstdout:\n{ourCheck.StdOut}stderr:\n{ourCheck.StdErr}";
            if (qemuCheck.ExitCode != ourCheck.ExitCode) problems.Add($"{string.Join(' ', args[..^1])}: exit codes differ{both}");
            else if (qemuCheck.StdOut != ourCheck.StdOut) problems.Add($"{string.Join(' ', args[..^1])}: stdout differs{both}");
            else if (qemuCheck.ExitCode != 1 && !Lines(qemuCheck.StdErr).SequenceEqual(ProblemLines(ourCheck.StdErr, path)))
                problems.Add($"{string.Join(' ', args[..^1])}: stderr differs{both}");
        }

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
    /// Our check's stderr without the one line qemu-img check does not print: our warning that the corrupt bit is set
    /// (qemu-img check says nothing of it).
    /// </summary>
    private static IEnumerable<string> ProblemLines(string stderr, string path) =>
        Lines(stderr).Where(l => !l.StartsWith($"qcow: warning: {path}: the corrupt bit is set", StringComparison.Ordinal));

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
}
