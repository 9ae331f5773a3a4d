using System.Globalization;
using System.Text.Json;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Qcow.Build.Tasks;

/// <summary>Reads the chain.json files of built chains into items (the Returns of GetQcowImages).</summary>
public sealed class ReadQcowChainManifest : QcowTask
{
    /// <summary>The chain.json files (metadata Chain: the top image, to make source paths full); missing ones are skipped.</summary>
    public ITaskItem[] Manifests { get; set; } = [];

    /// <summary>One item per layer (full path), bottom first, with metadata LayerName, Snapshot, SourceImage, BackingFile, VirtualSize, Sha256, ChainJson.</summary>
    [Output] public ITaskItem[] Layers { get; private set; } = [];

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        var layers = new List<ITaskItem>();
        foreach (var m in Manifests)
        {
            string path = m.GetMetadata("FullPath");
            if (!File.Exists(path)) continue;
            string dir = Path.GetDirectoryName(path)!;
            try
            {
                using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
                foreach (var l in doc.RootElement.GetProperty("layers").EnumerateArray())
                {
                    string file = l.GetProperty("file").GetString()!;
                    var item = new TaskItem(Path.Combine(dir, file));
                    m.CopyMetadataTo(item);
                    item.SetMetadata("LayerName", file);
                    item.SetMetadata("Snapshot", l.GetProperty("snapshot").GetString() ?? "");
                    // chain.json names sources relative to the top image's folder; the items carry full paths.
                    string source = l.GetProperty("sourceImage").GetString() ?? "";
                    string top = m.GetMetadata("Chain");
                    item.SetMetadata("SourceImage", top.Length > 0 && source.Length > 0 ? Path.GetFullPath(Path.Combine(Path.GetDirectoryName(top)!, source)) : source);
                    item.SetMetadata("BackingFile", l.GetProperty("backing").GetString() ?? "");
                    item.SetMetadata("VirtualSize", l.GetProperty("virtualSize").GetInt64().ToString(CultureInfo.InvariantCulture));
                    item.SetMetadata("Sha256", l.GetProperty("sha256").GetString() ?? "");
                    item.SetMetadata("ChainJson", path);
                    layers.Add(item);
                }
            }
            catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
            {
                Error(Codes.ManifestUnreadable, path, $"not a qcow-chain/1 manifest: {e.Message}");
            }
        }
        Layers = [.. layers];
    }
}
