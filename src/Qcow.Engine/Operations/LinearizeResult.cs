namespace Qcow.Engine.Operations;

/// <summary>The result of a linearization.</summary>
public sealed record LinearizeResult
{
    /// <summary>The layers, bottom first.</summary>
    public required IReadOnlyList<LayerResult> Layers { get; init; }
    /// <summary>Full path of chain.json.</summary>
    public required string ChainJsonPath { get; init; }
}
