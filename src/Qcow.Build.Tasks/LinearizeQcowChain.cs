using System.Globalization;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;

namespace Qcow.Build.Tasks;

/// <summary>
/// Writes a QcowChain's linear chain (one layer per state, bottom first) and its chain.json with
/// <see cref="LinearizeOperation.Run"/>. With <see cref="Rebuild"/>, only the layers of source images whose outputs are
/// stale are rewritten (missing layers are always written); the others are kept and only hashed for chain.json.
/// </summary>
public sealed class LinearizeQcowChain : QcowTask
{
    /// <summary>The chain: top image, with metadata OutputDir, ClusterSize, Compat, Compression, Snapshots, AllowedBackingPaths.</summary>
    [Required] public ITaskItem Chain { get; set; } = null!;

    /// <summary>
    /// The stale outputs (metadata Output, SourceImage, ChainId), as passed by a partially built target. Items of other
    /// chains are ignored; when none is of this chain nothing is written. Not set: the whole chain is rewritten.
    /// </summary>
    public ITaskItem[]? Rebuild { get; set; }

    /// <summary>
    /// Log the engine's warnings about the inputs (QCOW0100; default true). The SDK's targets set it false: the
    /// resolve step (ResolveQcowInputs) has already logged them, and a build warns once per image.
    /// </summary>
    public bool InputWarnings { get; set; } = true;

    /// <summary>The layers, bottom first, with metadata LayerName, Snapshot, SourceImage, BackingFile, VirtualSize, Sha256, Written.</summary>
    [Output] public ITaskItem[] Layers { get; private set; } = [];

    /// <summary>The chain.json written.</summary>
    [Output] public ITaskItem? ChainJson { get; private set; }

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        string top = Chain.GetMetadata(ItemMetadata.FullPath);
        string outDir = Settings.FixPath(Settings.Meta(Chain, "OutputDir", Path.GetDirectoryName(top)));
        string chainId = Chain.GetMetadata(ItemMetadata.ChainId);
        var options = TaskFailure.Step(Codes.InvalidOption, top, () =>
            Settings.Options(Chain.GetMetadata(ItemMetadata.ClusterSize), Chain.GetMetadata(ItemMetadata.Compat), Chain.GetMetadata(ItemMetadata.Compression)));
        string dir = Path.GetDirectoryName(BuildEngine?.ProjectFileOfTaskNode) ?? Environment.CurrentDirectory;
        string[] snapshots = Settings.List(Chain.GetMetadata(ItemMetadata.Snapshots));

        HashSet<string>? only = null;
        List<string> stale = [];
        List<ITaskItem> mine = [];
        if (Rebuild is not null)
        {
            mine = Rebuild.Where(r => r.GetMetadata(ItemMetadata.ChainId) == chainId).ToList();
            if (mine.Count == 0) return;
            // Layers whose file exists but is stale: rewrite every layer of their source image. Missing layers are
            // written by the engine anyway; a stale chain.json alone is rewritten by any run.
            only = new HashSet<string>(mine
                .Where(r => r.GetMetadata(ItemMetadata.SourceImage).Length > 0 && File.Exists(r.GetMetadata(ItemMetadata.OutputFile)))
                .Select(r => r.GetMetadata(ItemMetadata.SourceImage)), StringComparer.Ordinal);
            stale = mine.Select(r => r.GetMetadata(ItemMetadata.OutputFile)).ToList();
        }

        var request = new LinearizeRequest
        {
            TopImage = top,
            OutputFolder = outDir,
            Options = options,
            Snapshots = snapshots.Length == 0 ? null : snapshots,
            NamePattern = Chain.GetMetadata(ItemMetadata.NamePattern) is { Length: > 0 } np ? np : null,
            Policy = Settings.Policy(Settings.FullPaths(Chain.GetMetadata(ItemMetadata.AllowedBackingPaths), dir), InputWarnings ? w => Warning(Codes.EngineWarning, w.File, w.Message) : null),
            OnlyImages = only,
        };

        if (FailIfNotIncremental)
        {
            foreach (var s in Rebuild is null ? [Path.Combine(outDir, ChainManifest.FileName)] : stale)
                Error(Codes.NotUpToDate, s, "output is out of date; a build would write it");
            return;
        }

        Log.LogMessage(MessageImportance.High, only is null
            ? $"Linearizing {top} into {outDir}"
            : $"Linearizing {top} into {outDir} (rewriting layers of: {(only.Count == 0 ? "none, writing missing outputs" : string.Join(", ", only.Select(Path.GetFileName)))})");
        var result = TaskFailure.Step(Codes.WriteFailed, top, () => LinearizeOperation.Run(request, Progress(), CancellationToken));

        var layers = new List<ITaskItem>();
        foreach (var r in result.Layers)
        {
            var item = new TaskItem(r.Path);
            item.SetMetadata(ItemMetadata.LayerName, r.Layer.FileName);
            item.SetMetadata(ItemMetadata.Snapshot, r.Layer.Snapshot ?? "");
            item.SetMetadata(ItemMetadata.SourceImage, r.Layer.SourceImage);
            item.SetMetadata(ItemMetadata.BackingFile, r.Layer.BackingFileName ?? "");
            item.SetMetadata(ItemMetadata.VirtualSize, r.Layer.VirtualSize.ToString(CultureInfo.InvariantCulture));
            item.SetMetadata(ItemMetadata.Sha256, r.Sha256);
            item.SetMetadata(ItemMetadata.Written, r.Stats is null ? "false" : "true");
            item.SetMetadata(ItemMetadata.Chain, top);
            layers.Add(item);
            if (r.Stats is { } s)
                Log.LogMessage(MessageImportance.High,
                    $"  {r.Layer.FileName} -> {r.Path} ({s.DataClusters} data + {s.ZeroClusters} zero clusters, {Mib(s.FileSize)}, read {Mib(s.BytesRead)})");
            else
                Log.LogMessage(MessageImportance.Normal, $"  {r.Layer.FileName}: up to date, kept");
        }
        Layers = [.. layers];
        ChainJson = new TaskItem(result.ChainJsonPath);
        Log.LogMessage(MessageImportance.Normal, $"  wrote {result.ChainJsonPath}");
        // Every stale output of this chain is now complete: record the stamp each was built from.
        foreach (var r in mine)
            TaskFailure.Step(Codes.IoError, r.GetMetadata(ItemMetadata.OutputFile), () => Stamp.MarkBuilt(r.ItemSpec, r.GetMetadata(ItemMetadata.OutputFile)));
    }
}
