namespace Qcow.Build.Tasks;

/// <summary>
/// The item metadata names the tasks read and write, in one place. Sdk.targets uses the same names (%(OutputFile),
/// Kind="Layer", ...); a rename here is a rename there.
/// </summary>
public static class ItemMetadata
{
    // Set by users on QcowChain and QcowSnapshot items.
#pragma warning disable CS1591 // The names say what they are; the README's SDK section documents each.
    public const string OutputDir = nameof(OutputDir), OutputFile = nameof(OutputFile), ClusterSize = nameof(ClusterSize),
        Compat = nameof(Compat), Compression = nameof(Compression), AllowedBackingPaths = nameof(AllowedBackingPaths),
        Snapshots = nameof(Snapshots), NamePattern = nameof(NamePattern), Format = nameof(Format), Snapshot = nameof(Snapshot),
        DiffBaseSnapshot = nameof(DiffBaseSnapshot), DiffBaseImage = nameof(DiffBaseImage), BackingFile = nameof(BackingFile),
        BackingFormat = nameof(BackingFormat), OutputFormat = nameof(OutputFormat), Repository = nameof(Repository);

    // Set by the tasks on resolved items, work items and outputs.
    public const string ChainId = nameof(ChainId), Chain = nameof(Chain), ChainJson = nameof(ChainJson), Kind = nameof(Kind),
        Source = nameof(Source), SourceImage = nameof(SourceImage), LayerName = nameof(LayerName), VirtualSize = nameof(VirtualSize),
        Sha256 = nameof(Sha256), Written = nameof(Written), SourceFile = nameof(SourceFile), Registry = nameof(Registry),
        Digest = nameof(Digest), Tags = nameof(Tags), BlobsUploaded = nameof(BlobsUploaded), BlobsSkipped = nameof(BlobsSkipped),
        BlobsMounted = nameof(BlobsMounted), BytesUploaded = nameof(BytesUploaded);

    // Values of Kind.
    public const string KindLayer = "Layer", KindManifest = "Manifest", KindSnapshot = "Snapshot";

    // MSBuild's own.
    public const string FullPath = nameof(FullPath), DefiningProjectFullPath = nameof(DefiningProjectFullPath);
#pragma warning restore CS1591
}
