using Qcow.Engine.Chain;

namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow map</c> should map.</summary>
public sealed record MapRequest
{
    /// <summary>The image (qcow2 or raw).</summary>
    public required string Image { get; init; }
    /// <summary>The snapshot to map (see <see cref="Format.SnapshotSelector"/>), or null for the current state.</summary>
    public string? Snapshot { get; init; }
    /// <summary>Where backing files may be.</summary>
    public BackingPolicy? Policy { get; init; }
}
