namespace Qcow.Engine.Operations;

/// <summary>The result of <c>qcow info</c>.</summary>
public sealed record InfoResult
{
    /// <summary>The image, then (with <see cref="InfoRequest.BackingChain"/>) every file below it, top first.</summary>
    public required IReadOnlyList<ImageInfo> Images { get; init; }
}
