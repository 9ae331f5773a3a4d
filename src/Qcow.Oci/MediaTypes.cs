namespace Qcow.Oci;

/// <summary>The media types and annotation a chain artifact uses.</summary>
public static class MediaTypes
{
    /// <summary>An OCI 1.1 image manifest.</summary>
    public const string ImageManifest = "application/vnd.oci.image.manifest.v1+json";
    /// <summary>The manifest's <c>artifactType</c>, and chain.json's media type.</summary>
    public const string Chain = "application/vnd.qcow-build.chain.v1+json";
    /// <summary>A qcow2 layer of the chain.</summary>
    public const string Layer = "application/vnd.qcow-build.layer.v1.qcow2";
    /// <summary>The empty config of an artifact (the two bytes <c>{}</c>).</summary>
    public const string Empty = "application/vnd.oci.empty.v1+json";
    /// <summary>The annotation that names a blob's file.</summary>
    public const string TitleAnnotation = "org.opencontainers.image.title";
}
