using Qcow.Engine.Chain;

namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow info</c> should describe.</summary>
public sealed record InfoRequest
{
    /// <summary>The image (qcow2 or raw).</summary>
    public required string Image { get; init; }
    /// <summary>Describe every file below it too (<c>--backing-chain</c>); without it the backing file need not exist.</summary>
    public bool BackingChain { get; init; }
    /// <summary>Where backing files may be.</summary>
    public BackingPolicy? Policy { get; init; }
}
