using Qcow.Engine.Chain;

namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow compare</c> should compare.</summary>
public sealed record CompareRequest
{
    /// <summary>The first image.</summary>
    public required string Image1 { get; init; }
    /// <summary>The second image.</summary>
    public required string Image2 { get; init; }
    /// <summary>Sizes and allocation must match too (<c>-s</c>).</summary>
    public bool Strict { get; init; }
    /// <summary>The first image's snapshot, or null for its current state.</summary>
    public string? Snapshot1 { get; init; }
    /// <summary>The second image's snapshot, or null for its current state.</summary>
    public string? Snapshot2 { get; init; }
    /// <summary>Where backing files may be.</summary>
    public BackingPolicy? Policy { get; init; }
}
