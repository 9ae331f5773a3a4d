using System.Text;
using System.Text.Json;
using Qcow.Engine.Chain;
using Qcow.Engine.Format;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>What <c>qcow linearize</c> should do.</summary>
public sealed record LinearizeRequest
{
    /// <summary>The top image of the chain.</summary>
    public required string TopImage { get; init; }
    /// <summary>The folder the layers and chain.json go to.</summary>
    public required string OutputFolder { get; init; }
    /// <summary>Cluster size, compat and compression of every layer.</summary>
    public WriteOptions Options { get; init; } = WriteOptions.Default;
    /// <summary>Only these snapshots (names or ids) become layers; null: all of them.</summary>
    public IReadOnlyList<string>? Snapshots { get; init; }
    /// <summary>Where backing files may be.</summary>
    public BackingPolicy? Policy { get; init; }
    /// <summary>
    /// When set, only layers taken from these source images (full paths) are written; the others are expected to be
    /// up to date in the output folder already (they are written anyway when missing). Used for partial rebuilds.
    /// </summary>
    public IReadOnlySet<string>? OnlyImages { get; init; }
    /// <summary>
    /// How layers are named, without ".qcow2": <c>{image}</c> is the source image's file name without extension,
    /// <c>{snapshot}</c> the snapshot's name. For an image's current state <c>{snapshot}</c> is empty and a
    /// separator (<c>_</c>, <c>-</c>, <c>.</c>) next to it is dropped. Default <c>{image}_{snapshot}</c>.
    /// </summary>
    public string? NamePattern { get; init; }
}

/// <summary>One layer of a linear chain, as planned from the sources.</summary>
public sealed record PlannedLayer
{
    /// <summary>Output file name, <c>{image}_{snapshot}.qcow2</c> or <c>{image}.qcow2</c>.</summary>
    public required string FileName { get; init; }
    /// <summary>The layer below's file name, or null for the bottom layer.</summary>
    public string? BackingFileName { get; init; }
    /// <summary>Full path of the source image the state comes from.</summary>
    public required string SourceImage { get; init; }
    /// <summary>The source snapshot's name, or null for the image's current state.</summary>
    public string? Snapshot { get; init; }
    /// <summary>The state's virtual size.</summary>
    public long VirtualSize { get; init; }
}

/// <summary>The planned layers of a chain, bottom first, and every file they are made from.</summary>
public sealed record ChainPlan
{
    /// <summary>The layers, bottom first.</summary>
    public required IReadOnlyList<PlannedLayer> Layers { get; init; }
    /// <summary>The chain's files, bottom first (images, raw bases, external data files).</summary>
    public required IReadOnlyList<string> InputFiles { get; init; }
    /// <summary>For each source image (full path), the files its layers depend on: itself and everything below.</summary>
    public required IReadOnlyDictionary<string, IReadOnlyList<string>> DependenciesByImage { get; init; }
    /// <summary>The top image's format as probed: "qcow2" or "raw" (a raw top is one layer, its only state).</summary>
    public required string TopFormat { get; init; }
}

/// <summary>A layer as written.</summary>
public sealed record LayerResult
{
    /// <summary>The plan.</summary>
    public required PlannedLayer Layer { get; init; }
    /// <summary>Full path of the layer file.</summary>
    public required string Path { get; init; }
    /// <summary>What writing it cost; null when the layer was up to date and not rewritten.</summary>
    public LayerStats? Stats { get; init; }
    /// <summary>SHA-256 of the layer file.</summary>
    public required string Sha256 { get; init; }
}

/// <summary>The result of a linearization.</summary>
public sealed record LinearizeResult
{
    /// <summary>The layers, bottom first.</summary>
    public required IReadOnlyList<LayerResult> Layers { get; init; }
    /// <summary>Full path of chain.json.</summary>
    public required string ChainJsonPath { get; init; }
}

/// <summary>
/// Turns a chain that mixes internal snapshots and backing files into a plain external chain: one layer per state,
/// bottom-up (within an image: its snapshots in table order, then its current state), each layer holding exactly the
/// clusters whose content differs from the full view of the state below it.
/// </summary>
public static class Linearizer
{
    /// <summary>The name of the manifest written beside the layers.</summary>
    public const string ChainJsonName = "chain.json";

    /// <summary>Plans the layers of <paramref name="request"/>'s chain without writing anything.</summary>
    public static ChainPlan Plan(LinearizeRequest request)
    {
        using var set = new ImageSet(request.Policy);
        return Plan(request, set, out _);
    }

    private static ChainPlan Plan(LinearizeRequest request, ImageSet set, out List<(PlannedLayer Layer, Func<DiskView> View)> states)
    {
        var chain = set.Chain(request.TopImage);
        var wanted = request.Snapshots?.ToHashSet(StringComparer.Ordinal);
        var matched = new HashSet<string>(StringComparer.Ordinal);
        states = [];
        var layers = new List<PlannedLayer>();
        var deps = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new List<string>();
        string? below = null;
        for (int i = chain.Count - 1; i >= 0; i--)
        {
            var link = chain[i];
            files.Add(link.Path);
            if (link.Image is { } img && !ReferenceEquals(img.DataFile, img.File)) files.Add(img.DataFile.Path);
            deps[link.Path] = files.ToArray();
            string stem = Path.GetFileNameWithoutExtension(link.Path);
            var linkStates = new List<Snapshot?>();
            if (link.Image is not null)
            {
                foreach (var s in link.Image.Snapshots)
                {
                    if (wanted is null) { linkStates.Add(s); continue; }
                    string? hit = wanted.FirstOrDefault(w => w == s.Name || w == s.Id || w == $"snapshot.name={s.Name}" || w == $"snapshot.id={s.Id}");
                    if (hit is null) continue;
                    matched.Add(hit);
                    linkStates.Add(s);
                }
            }
            linkStates.Add(null);
            int depth = i;
            foreach (var snap in linkStates)
            {
                string file = LayerName(request.NamePattern ?? DefaultNamePattern, stem, snap?.Name, link.Path);
                // A damaged snapshot entry fails the chain, named, unless the Snapshots list leaves it out.
                if (snap is { IsIntact: false })
                    throw new QcowFormatException(link.Path, $"snapshot table entry {snap.Index} ('{snap.Name}', id {snap.Id}) {snap.ProblemField}", $"{snap.Problem}; leave it out with --snapshots (MSBuild: Snapshots metadata)");
                // Snapshot names come from the image: never let one steer the output out of OUTDIR.
                if (snap is not null && !IsPlainFileName(snap.Name))
                    throw new QcowException(link.Path, $"snapshot name '{snap.Name}' cannot be part of a file name (path separators, '..' or control characters); leave it out with --snapshots or rename it");
                if (names.TryGetValue(file, out var clash))
                    throw new QcowException(link.Path, $"two states would both be written as {file} (also from {clash}); rename one of the images or snapshots");
                names[file] = link.Path;
                long size = snap is null ? link.VirtualSize : (long)(snap.DiskSize ?? link.Image!.Header.Size);
                var layer = new PlannedLayer { FileName = file, BackingFileName = below, SourceImage = link.Path, Snapshot = snap?.Name, VirtualSize = size };
                layers.Add(layer);
                var captured = snap;
                states.Add((layer, () => StateView(set, chain, depth, captured)));
                below = file;
            }
        }
        if (wanted is not null)
        {
            var missing = wanted.Where(w => !matched.Contains(w)).ToList();
            if (missing.Count > 0)
            {
                var all = chain.Where(l => l.Image is not null).SelectMany(l => l.Image!.Snapshots.Select(s => $"{Path.GetFileName(l.Path)}:{s.Name}")).ToList();
                throw new QcowException(request.TopImage, $"snapshot(s) {string.Join(", ", missing)} not found in the chain; snapshots are: {(all.Count == 0 ? "(none)" : string.Join(", ", all))}");
            }
        }
        return new ChainPlan { Layers = layers, InputFiles = files, DependenciesByImage = deps, TopFormat = chain[0].Format };
    }

    /// <summary>The default layer name pattern: <c>imageA_sn0.qcow2</c>, <c>imageA.qcow2</c>.</summary>
    public const string DefaultNamePattern = "{image}_{snapshot}";

    /// <summary>Expands a name pattern (see <see cref="LinearizeRequest.NamePattern"/>) into a layer file name.</summary>
    public static string LayerName(string pattern, string image, string? snapshot, string sourcePath)
    {
        if (!pattern.Contains("{image}", StringComparison.Ordinal))
            throw new QcowException(sourcePath, $"layer name pattern '{pattern}' must contain {{image}} (layers of different images would clash)");
        string name = pattern.Replace("{image}", image, StringComparison.Ordinal);
        if (snapshot is not null)
            name = name.Replace("{snapshot}", snapshot, StringComparison.Ordinal);
        else
        {
            foreach (var sep in new[] { "_", "-", "." })
                name = name.Replace(sep + "{snapshot}", "", StringComparison.Ordinal).Replace("{snapshot}" + sep, "", StringComparison.Ordinal);
            name = name.Replace("{snapshot}", "", StringComparison.Ordinal);
        }
        if (!pattern.Contains("{snapshot}", StringComparison.Ordinal) && snapshot is not null)
            throw new QcowException(sourcePath, $"layer name pattern '{pattern}' must contain {{snapshot}} (the states of one image would clash)");
        if (!IsPlainFileName(name))
            throw new QcowException(sourcePath, $"layer name '{name}' from pattern '{pattern}' is not a plain file name");
        return name.EndsWith(".qcow2", StringComparison.OrdinalIgnoreCase) ? name : name + ".qcow2";
    }

    private static bool IsPlainFileName(string name) =>
        name.Length > 0 && name != "." && name != ".." && !name.Contains("..", StringComparison.Ordinal) &&
        name.IndexOfAny(['/', '\\', ':']) < 0 && !name.Any(char.IsControl) &&
        name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0;

    private static DiskView StateView(ImageSet set, IReadOnlyList<ChainLink> chain, int index, Snapshot? snapshot)
    {
        // The view of chain[index] at a state, over the current state of everything below it.
        DiskView? backing = null;
        for (int j = chain.Count - 1; j > index; j--)
        {
            var l = chain[j];
            backing = l.Image is null ? new RawView(l.RawFile!, j - index) : new QcowView(l.Image, null, backing, j - index);
        }
        var link = chain[index];
        if (link.Image is null) return new RawView(link.RawFile!, 0);
        return new QcowView(link.Image, snapshot, backing, 0);
    }

    /// <summary>Writes the layers and chain.json. Layers appear one by one, each only when complete.</summary>
    public static LinearizeResult Run(LinearizeRequest request, Action<ProgressInfo>? progress = null, CancellationToken cancel = default)
    {
        request.Options.Validate();
        using var set = new ImageSet(request.Policy);
        var plan = Plan(request, set, out var states);
        string outDir = Path.GetFullPath(request.OutputFolder);
        foreach (var layer in plan.Layers)
            OutputGuard.RefuseOverwritingInputs(plan.InputFiles, Path.Combine(outDir, layer.FileName));
        OutputGuard.RefuseOverwritingInputs(plan.InputFiles, Path.Combine(outDir, ChainJsonName));
        Directory.CreateDirectory(outDir);
        // A killed run may have left temporaries for layers this run keeps rather than rewrites.
        foreach (var layer in plan.Layers) OutputFile.RemoveStaleTemporaries(Path.Combine(outDir, layer.FileName));

        // Three stages overlap: a background task classifies the layers in order (which clusters differ: reads and
        // compares the sources); this thread writes each layer as soon as it is classified, reading its data clusters
        // straight into the output; each layer's hash, writes, flush and rename finish in the background, in layer
        // order. So the disk works while the sources are read, and layers still appear one by one, complete.
        var work = new List<(PlannedLayer Layer, string Path, DiskView View, DiskView Below, bool Skip)>();
        DiskView? previous = null;
        foreach (var (layer, makeView) in states)
        {
            var view = makeView();
            string path = Path.Combine(outDir, layer.FileName);
            bool skip = request.OnlyImages is not null && !request.OnlyImages.Contains(layer.SourceImage) && File.Exists(path);
            work.Add((layer, path, view, previous ?? new ZeroView(view.Size), skip));
            previous = view;
        }
        var previousHashes = request.OnlyImages is null ? null : ReadPreviousHashes(Path.Combine(outDir, ChainJsonName), request.TopImage);
        // The bottom layer holds the whole base image, usually far more than any layer above it: compare it while the
        // second layer (usually small) is being written, so the disk does not wait for the largest comparison.
        int[] order = work.Count < 2 ? [0] : [1, 0, .. Enumerable.Range(2, work.Count - 2)];
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var classified = work.Select(_ => new TaskCompletionSource<DiffPlan?>(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        // Uncompressed layers are planned first, so each is hashed as it is written rather than read back.
        var classifier = Task.Run(() =>
        {
            foreach (int i in order)
            {
                try
                {
                    var w = work[i];
                    classified[i].SetResult(w.Skip || request.Options.Compress
                        ? null
                        : DiffWriter.Classify(w.View, w.Below, request.Options, w.Layer.FileName, progress, stop.Token));
                }
                catch (Exception e)
                {
                    foreach (var c in classified) c.TrySetException(e);
                    return;
                }
            }
        });

        // Layers are renamed into place bottom first, whatever order they are written in.
        var renamed = work.Select(_ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).ToArray();
        var pending = new (PlannedLayer Layer, string Path, LayerStats? Stats, Task<string> Sha)[work.Count];
        var commits = new List<Task>();
        try
        {
            foreach (int i in order)
            {
                var (layer, path, view, below, skip) = work[i];
                cancel.ThrowIfCancellationRequested();
                if (skip)
                {
                    pending[i] = (layer, path, null, Task.FromResult(KeptLayerHash(previousHashes, layer, path)));
                    int at = i;
                    commits.Add(Task.Run(() => AfterBelow(at, renamed, () => { })));
                    continue;
                }
                var diff = classified[i].Task.GetAwaiter().GetResult();
                var output = OutputFile.Create(path);
                LayerStats stats;
                QcowWriter writer;
                try
                {
                    writer = new QcowWriter(output, view.Size, request.Options, layer.BackingFileName, layer.BackingFileName is null ? null : "qcow2", diff?.Layout);
                    try
                    {
                        stats = diff is null
                            ? DiffWriter.Write(view, below, writer, layer.FileName, progress, cancel)
                            : DiffWriter.Emit(diff, view, writer, cancel);
                        writer.WriteTables();
                        PipelineHooks.Step("written:" + layer.FileName);
                    }
                    catch
                    {
                        writer.Dispose();
                        throw;
                    }
                }
                catch
                {
                    output.Dispose();
                    throw;
                }
                int index = i;
                var commit = Task.Run(() =>
                {
                    using (writer)
                    {
                        string? sha = null;
                        AfterBelow(index, renamed, () =>
                        {
                            sha = writer.Complete(computeSha256: true);
                            PipelineHooks.Step("committed:" + layer.FileName);
                        });
                        return sha!;
                    }
                });
                commits.Add(commit);
                pending[i] = (layer, path, stats, commit);
            }
        }
        catch (Exception e)
        {
            // Stop the classifier, release commits waiting on layers that will not come, and let running commits
            // finish (or remove their temporaries) before reporting.
            stop.Cancel();
            foreach (var r in renamed) r.TrySetException(e);
            try { classifier.Wait(); } catch (AggregateException) { }
            try { Task.WaitAll(commits); } catch (AggregateException) { }
            throw;
        }

        var results = new List<LayerResult>();
        // Every commit has ended (each waits for the one below) before the first failure, if any, is reported.
        try { Task.WaitAll(commits); } catch (AggregateException) { }
        foreach (var (layer, path, stats, shaTask) in pending)
        {
            string sha = shaTask.GetAwaiter().GetResult();
            results.Add(stats is null
                ? new LayerResult { Layer = layer, Path = path, Sha256 = sha }
                : new LayerResult { Layer = layer, Path = path, Stats = stats with { Sha256 = sha, FileSize = new FileInfo(path).Length }, Sha256 = sha });
        }

        string jsonPath = Path.Combine(outDir, ChainJsonName);
        PipelineHooks.Step("chain-json");
        WriteChainJson(jsonPath, request.TopImage, results);
        return new LinearizeResult { Layers = results, ChainJsonPath = jsonPath };
    }

    /// <summary>Runs <paramref name="commit"/> once the layer below <paramref name="index"/> is in place, then marks this one.</summary>
    private static void AfterBelow(int index, TaskCompletionSource[] renamed, Action commit)
    {
        try
        {
            if (index > 0) renamed[index - 1].Task.GetAwaiter().GetResult();
            commit();
            renamed[index].TrySetResult();
        }
        catch (Exception e)
        {
            renamed[index].TrySetException(e);
            throw;
        }
    }

    /// <summary>
    /// The SHA-256 of a layer kept from an earlier run: taken from that run's chain.json when it describes the same
    /// layer and the file has not been written since chain.json was (so a partial rebuild does not read every kept
    /// layer back); otherwise computed from the file.
    /// </summary>
    private static string KeptLayerHash(PreviousHashes? previous, PlannedLayer layer, string path)
    {
        if (previous is not null && previous.Layers.TryGetValue(layer.FileName, out var entry) &&
            entry.Backing == layer.BackingFileName && entry.Snapshot == layer.Snapshot && entry.VirtualSize == layer.VirtualSize &&
            entry.SourceImage == SourceName(previous.TopFolder, layer.SourceImage) &&
            File.GetLastWriteTimeUtc(path) <= previous.WrittenUtc)
            return entry.Sha256;
        return HashFile(path);
    }

    private sealed record PreviousLayer(string Sha256, string? Backing, string? SourceImage, string? Snapshot, long VirtualSize);

    private sealed record PreviousHashes(string TopFolder, DateTime WrittenUtc, Dictionary<string, PreviousLayer> Layers);

    /// <summary>How chain.json names a source image: relative to the top image's folder, with forward slashes.</summary>
    private static string SourceName(string topFolder, string sourceImage) =>
        Path.GetRelativePath(topFolder, sourceImage).Replace('\\', '/');

    /// <summary>The layers an earlier chain.json in the output folder describes; null when there is none or it cannot be read.</summary>
    private static PreviousHashes? ReadPreviousHashes(string chainJson, string topImage)
    {
        try
        {
            if (!File.Exists(chainJson)) return null;
            var written = File.GetLastWriteTimeUtc(chainJson);
            using var doc = JsonDocument.Parse(File.ReadAllBytes(chainJson));
            if (doc.RootElement.GetProperty("format").GetString() != "qcow-chain/1") return null;
            var layers = new Dictionary<string, PreviousLayer>(StringComparer.Ordinal);
            foreach (var l in doc.RootElement.GetProperty("layers").EnumerateArray())
            {
                string? sha = l.GetProperty("sha256").GetString();
                string? file = l.GetProperty("file").GetString();
                if (file is null || sha is not { Length: 64 }) continue;
                layers[file] = new PreviousLayer(sha, l.GetProperty("backing").GetString(), l.GetProperty("sourceImage").GetString(),
                    l.GetProperty("snapshot").GetString(), l.GetProperty("virtualSize").GetInt64());
            }
            return new PreviousHashes(Path.GetDirectoryName(Path.GetFullPath(topImage))!, written, layers);
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException
                                      or IOException or UnauthorizedAccessException)
        {
            // Not ours, or damaged: hash the kept layers instead.
            return null;
        }
    }

    private static string HashFile(string path)
    {
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(s));
    }

    private static void WriteChainJson(string path, string topImage, IReadOnlyList<LayerResult> layers)
    {
        string topFolder = Path.GetDirectoryName(Path.GetFullPath(topImage))!;
        using var output = OutputFile.Create(path);
        // "\n" on every OS: the default (Environment.NewLine) would give other bytes, and another hash, on Windows.
        using (var json = new Utf8JsonWriter(output.Stream, new JsonWriterOptions { Indented = true, NewLine = "\n" }))
        {
            json.WriteStartObject();
            json.WriteString("format", "qcow-chain/1");
            json.WriteStartArray("layers");
            foreach (var r in layers)
            {
                json.WriteStartObject();
                json.WriteString("file", r.Layer.FileName);
                if (r.Layer.BackingFileName is null) json.WriteNull("backing"); else json.WriteString("backing", r.Layer.BackingFileName);
                json.WriteString("sourceImage", SourceName(topFolder, r.Layer.SourceImage));
                if (r.Layer.Snapshot is null) json.WriteNull("snapshot"); else json.WriteString("snapshot", r.Layer.Snapshot);
                json.WriteNumber("virtualSize", r.Layer.VirtualSize);
                json.WriteString("sha256", r.Sha256);
                if (r.Stats is { } s) json.WriteNumber("bytesRead", s.BytesRead);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        output.Stream.Write("\n"u8);
        output.Commit(false);
    }
}
