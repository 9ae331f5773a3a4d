namespace Qcow.Engine.Operations;

/// <summary>The result of <c>qcow map</c>.</summary>
public sealed record MapResult
{
    /// <summary>The runs, in guest order, covering the whole virtual size.</summary>
    public required IReadOnlyList<MapEntry> Entries { get; init; }
}
