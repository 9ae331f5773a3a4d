using System.Globalization;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Engine;
using Qcow.Engine.Chain;

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
            string path = m.GetMetadata(ItemMetadata.FullPath);
            if (!File.Exists(path)) continue;
            string dir = Path.GetDirectoryName(path)!;
            ChainManifest manifest;
            try
            {
                // The engine's reader: the format version and every field the items carry are checked there.
                manifest = ChainManifest.Read(path);
            }
            catch (QcowException e)
            {
                // Each unreadable manifest is reported, not only the first.
                Error(Codes.ManifestUnreadable, e.FilePath ?? path, $"not a {ChainManifest.Format} manifest: {e.Reason}");
                continue;
            }
            string top = m.GetMetadata(ItemMetadata.Chain);
            foreach (var l in manifest.Layers)
            {
                var item = new TaskItem(Path.Combine(dir, l.File));
                m.CopyMetadataTo(item);
                item.SetMetadata(ItemMetadata.LayerName, l.File);
                item.SetMetadata(ItemMetadata.Snapshot, l.Snapshot ?? "");
                // chain.json names sources relative to the top image's folder; the items carry full paths.
                string source = l.SourceImage ?? "";
                item.SetMetadata(ItemMetadata.SourceImage, top.Length > 0 && source.Length > 0 ? Path.GetFullPath(Path.Combine(Path.GetDirectoryName(top)!, source)) : source);
                item.SetMetadata(ItemMetadata.BackingFile, l.Backing ?? "");
                item.SetMetadata(ItemMetadata.VirtualSize, l.VirtualSize.ToString(CultureInfo.InvariantCulture));
                item.SetMetadata(ItemMetadata.Sha256, l.Sha256);
                item.SetMetadata(ItemMetadata.ChainJson, path);
                layers.Add(item);
            }
        }
        Layers = [.. layers];
    }
}
