namespace Qcow.Testing;

/// <summary>The tests' file hash, the engine's own (<see cref="Qcow.Engine.IO.FileHash"/>): to pin outputs and to show sources are never modified.</summary>
public static class FileHash
{
    /// <summary>SHA-256 of a file, lower-case hex (as chain.json records it).</summary>
    public static string Sha256(string path) => Qcow.Engine.IO.FileHash.Sha256(path).Sha256;
}
