namespace Qcow.Engine.Chain;

/// <summary>
/// Which files an image may name as its backing file or external data file. Names come from the image, so they are
/// attacker-controlled: by default a backing file must resolve (symlinks followed) inside the folder tree of the
/// image that names it; anything else must be allowed here.
/// </summary>
public sealed class BackingPolicy
{
    /// <summary>The default: inside the naming image's folder tree only.</summary>
    public static BackingPolicy Default { get; } = new();

    /// <summary>Folders (and their trees) or files that may also be used as backing files.</summary>
    public IReadOnlyList<string> AllowedPaths { get; init; } = [];

    /// <summary>Receives warnings about the inputs (e.g. a backing file whose format had to be probed).</summary>
    public Action<QcowWarning>? Warning { get; init; }
}
