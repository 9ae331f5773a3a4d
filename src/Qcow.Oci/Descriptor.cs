namespace Qcow.Oci;

/// <summary>An OCI content descriptor: what a blob is, its digest and size, and the file name it carries.</summary>
public sealed record Descriptor(string MediaType, string Digest, long Size, string? Title = null);
