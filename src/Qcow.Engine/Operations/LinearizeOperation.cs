using Qcow.Engine.Chain;
using Qcow.Engine.Pipeline;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// Turns a chain that mixes internal snapshots and backing files into a plain external chain: one layer per state,
/// bottom-up (within an image: its snapshots in table order, then its current state), each layer holding exactly the
/// clusters whose content differs from the full view of the state below it.
/// </summary>
public static class LinearizeOperation
{
    /// <summary>The name of the manifest written beside the layers.</summary>
    public const string ChainJsonName = ChainManifest.FileName;

    /// <summary>The default layer name pattern: <c>imageA_sn0.qcow2</c>, <c>imageA.qcow2</c>.</summary>
    public const string DefaultNamePattern = ChainPlanner.DefaultNamePattern;

    /// <summary>Plans the layers of <paramref name="request"/>'s chain without writing anything.</summary>
    public static ChainPlan Plan(LinearizeRequest request)
    {
        using var set = new ImageSet(request.Policy);
        return ChainPlanner.Plan(request, set, out _);
    }

    /// <summary>Writes the layers and chain.json. Layers appear one by one, each only when complete.</summary>
    public static LinearizeResult Run(LinearizeRequest request, Action<ProgressInfo>? progress = null, CancellationToken cancel = default)
    {
        request.Options.Validate();
        using var set = new ImageSet(request.Policy);
        var plan = ChainPlanner.Plan(request, set, out var states);
        string outDir = Path.GetFullPath(request.OutputFolder);
        string jsonPath = Path.Combine(outDir, ChainJsonName);
        foreach (var layer in plan.Layers)
            OutputGuard.RefuseOverwritingInputs(plan.InputFiles, Path.Combine(outDir, layer.FileName));
        OutputGuard.RefuseOverwritingInputs(plan.InputFiles, jsonPath);
        Directory.CreateDirectory(outDir);
        // A killed run may have left temporaries for layers this run keeps rather than rewrites.
        foreach (var layer in plan.Layers) OutputFile.RemoveStaleTemporaries(Path.Combine(outDir, layer.FileName));

        var kept = request.OnlyImages is null ? null : KeptLayerHashes.Read(jsonPath, request.TopImage);
        var outputs = new List<LayerOutput>();
        var layerProgress = progress is null ? null : new OutputProgress(progress, plan.Layers.Select(l => (l.FileName, l.VirtualSize)).ToList());
        DiskView? previous = null;
        foreach (var (layer, makeView) in states)
        {
            var view = makeView();
            string path = Path.Combine(outDir, layer.FileName);
            bool keep = kept is not null && !request.OnlyImages!.Contains(layer.SourceImage) && File.Exists(path);
            outputs.Add(new LayerOutput(layer, path, view, previous ?? new ZeroView(view.Size), request.Options,
                keep ? () => kept!.Of(layer, path) : null, layerProgress, outputs.Count));
            previous = view;
        }
        // Bottom first: the bottom layer holds the whole base image, usually far more than any layer above it, so it
        // starts first; the pipeline's second writer writes the layers above it meanwhile.
        int[] order = [.. Enumerable.Range(0, outputs.Count)];
        OutputPipeline.Run(outputs, order, cancel);

        var results = outputs.Select(o => o.Result).ToList();
        PipelineHooks.Step("chain-json");
        Manifest(request.TopImage, results).Write(jsonPath);
        return new LinearizeResult { Layers = results, ChainJsonPath = jsonPath };
    }

    private static ChainManifest Manifest(string topImage, IReadOnlyList<LayerResult> layers)
    {
        string topFolder = Path.GetDirectoryName(Path.GetFullPath(topImage))!;
        return new ChainManifest(layers.Select(r => new ChainManifestLayer
        {
            File = r.Layer.FileName,
            Backing = r.Layer.BackingFileName,
            SourceImage = KeptLayerHashes.SourceName(topFolder, r.Layer.SourceImage),
            Snapshot = r.Layer.Snapshot,
            VirtualSize = r.Layer.VirtualSize,
            Sha256 = r.Sha256,
        }).ToList());
    }
}
