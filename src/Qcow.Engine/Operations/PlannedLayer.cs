namespace Qcow.Engine.Operations;

/// <summary>One layer of a linear chain, as planned from the sources.</summary>
public sealed record PlannedLayer
{
    /// <summary>Output file name, <c>{image}_{snapshot}.qcow2</c> or <c>{image}.qcow2</c>.</summary>
    public required string FileName { get; init; }
    /// <summary>The layer below's file name, or null for the bottom layer.</summary>
    public string? BackingFileName { get; init; }
    /// <summary>Full path of the source image the state comes from.</summary>
    public required string SourceImage { get; init; }
    /// <summary>The source snapshot's name, or null for the image's current state.</summary>
    public string? Snapshot { get; init; }
    /// <summary>The state's virtual size.</summary>
    public long VirtualSize { get; init; }
}
