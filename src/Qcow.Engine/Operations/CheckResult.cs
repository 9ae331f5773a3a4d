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
