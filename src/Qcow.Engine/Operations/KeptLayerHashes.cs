using Qcow.Engine.Chain;
using Qcow.Engine.IO;

namespace Qcow.Engine.Operations;

/// <summary>
/// The SHA-256s of layers a partial rebuild keeps: taken from the earlier run's chain.json when it describes the same
/// layer and the file has not been written since chain.json was (so a partial rebuild does not read every kept layer
/// back); otherwise computed from the file.
/// </summary>
internal sealed class KeptLayerHashes
{
    private readonly string _topFolder;
    private readonly DateTime _writtenUtc;
    private readonly Dictionary<string, ChainManifestLayer> _layers;

    private KeptLayerHashes(string topFolder, DateTime writtenUtc, Dictionary<string, ChainManifestLayer> layers)
    {
        _topFolder = topFolder;
        _writtenUtc = writtenUtc;
        _layers = layers;
    }

    /// <summary>What the chain.json at <paramref name="chainJson"/> records; none when it is missing, damaged or foreign.</summary>
    public static KeptLayerHashes Read(string chainJson, string topImage)
    {
        string topFolder = Path.GetDirectoryName(Path.GetFullPath(topImage))!;
        var layers = new Dictionary<string, ChainManifestLayer>(StringComparer.Ordinal);
        var written = DateTime.MinValue;
        if (File.Exists(chainJson))
        {
            try
            {
                written = File.GetLastWriteTimeUtc(chainJson);
                foreach (var l in ChainManifest.Read(chainJson).Layers) layers[l.File] = l;
            }
            catch (QcowException)
            {
                // Not ours, another format version, or damaged: hash the kept layers instead.
                layers.Clear();
            }
        }
        return new KeptLayerHashes(topFolder, written, layers);
    }

    /// <summary>The SHA-256 of <paramref name="layer"/>, kept at <paramref name="path"/>.</summary>
    public string Of(PlannedLayer layer, string path)
    {
        if (_layers.TryGetValue(layer.FileName, out var entry) &&
            entry.Backing == layer.BackingFileName && entry.Snapshot == layer.Snapshot && entry.VirtualSize == layer.VirtualSize &&
            entry.SourceImage == SourceName(_topFolder, layer.SourceImage) &&
            File.GetLastWriteTimeUtc(path) <= _writtenUtc)
            return entry.Sha256;
        return FileHash.Sha256(path).Sha256;
    }

    /// <summary>How chain.json names a source image: relative to the top image's folder, with forward slashes.</summary>
    public static string SourceName(string topFolder, string sourceImage) =>
        Path.GetRelativePath(topFolder, sourceImage).Replace('\\', '/');
}
