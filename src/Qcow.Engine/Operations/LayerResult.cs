namespace Qcow.Engine.Operations;

/// <summary>A layer as written.</summary>
public sealed record LayerResult
{
    /// <summary>The plan.</summary>
    public required PlannedLayer Layer { get; init; }
    /// <summary>Full path of the layer file.</summary>
    public required string Path { get; init; }
    /// <summary>What writing it cost; null when the layer was up to date and not rewritten.</summary>
    public LayerStats? Stats { get; init; }
    /// <summary>SHA-256 of the layer file.</summary>
    public required string Sha256 { get; init; }
}
