namespace Qcow.Engine.Operations;

/// <summary>The planned layers of a chain, bottom first, and every file they are made from.</summary>
public sealed record ChainPlan
{
    /// <summary>The layers, bottom first.</summary>
    public required IReadOnlyList<PlannedLayer> Layers { get; init; }
    /// <summary>The chain's files, bottom first (images, raw bases, external data files).</summary>
    public required IReadOnlyList<string> InputFiles { get; init; }
    /// <summary>For each source image (full path), the files its layers depend on: itself and everything below.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> DependenciesByImage { get; init; }
    /// <summary>The top image's format as probed: "qcow2" or "raw" (a raw top is one layer, its only state).</summary>
    public required string TopFormat { get; init; }
}
