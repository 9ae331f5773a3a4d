namespace Qcow.Testing;

/// <summary>One state of the seed chain and the layer it linearizes into.</summary>
public sealed record SeedState(string Layer, string Image, string? Snapshot);

/// <summary>
/// The states of the seed chain (<see cref="ImageBuilder.SeedChain"/>, and the committed samples/seed images), bottom
/// first, with the default layer names: the one table the engine, build and registry tests check layers against.
/// </summary>
public static class SeedStates
{
    /// <summary>Every state, bottom first.</summary>
    public static IReadOnlyList<SeedState> All { get; } =
    [
        new("imageA_sn0.qcow2", "imageA.qcow2", "sn0"),
        new("imageA.qcow2", "imageA.qcow2", null),
        new("imageB_sn0.qcow2", "imageB.qcow2", "sn0"),
        new("imageB_sn1.qcow2", "imageB.qcow2", "sn1"),
        new("imageB.qcow2", "imageB.qcow2", null),
        new("imageC_sn0.qcow2", "imageC.qcow2", "sn0"),
        new("imageC.qcow2", "imageC.qcow2", null),
    ];
}
