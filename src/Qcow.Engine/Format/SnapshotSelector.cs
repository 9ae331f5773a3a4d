namespace Qcow.Engine.Format;

/// <summary>
/// How a snapshot is named on the command line, in MSBuild metadata and in requests, with qemu's rule (qemu-img
/// convert -l, bdrv_snapshot_load_tmp_by_id_or_name): <c>snapshot.id=X</c> is the snapshot whose id is X,
/// <c>snapshot.name=X</c> the one whose name is X, and a bare X the snapshot whose id is X if there is one, else the
/// one named X. Every lookup in the engine (convert -s/-l/-d, linearize --snapshots) goes through here.
/// </summary>
public static class SnapshotSelector
{
    /// <summary>The snapshot <paramref name="spec"/> names in <paramref name="snapshots"/>, or null.</summary>
    public static Snapshot? TryFind(IReadOnlyList<Snapshot> snapshots, string spec)
    {
        if (spec.StartsWith("snapshot.id=", StringComparison.Ordinal))
            return snapshots.FirstOrDefault(s => s.Id == spec["snapshot.id=".Length..]);
        if (spec.StartsWith("snapshot.name=", StringComparison.Ordinal))
            return snapshots.FirstOrDefault(s => s.Name == spec["snapshot.name=".Length..]);
        return snapshots.FirstOrDefault(s => s.Id == spec) ?? snapshots.FirstOrDefault(s => s.Name == spec);
    }

    /// <summary>
    /// The snapshot <paramref name="spec"/> names in <paramref name="snapshots"/> of the image at
    /// <paramref name="path"/>; throws, listing the snapshots that exist, when none matches.
    /// </summary>
    public static Snapshot Find(IReadOnlyList<Snapshot> snapshots, string spec, string path)
    {
        if (TryFind(snapshots, spec) is { } found) return found;
        string have = snapshots.Count == 0
            ? "the image has no snapshots"
            : "snapshots are: " + string.Join(", ", snapshots.Select(s => $"{s.Name} (id {s.Id})"));
        throw new QcowException(path, $"snapshot '{spec}' not found; {have}");
    }
}
