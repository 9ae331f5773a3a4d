using System.Globalization;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;

namespace Qcow.Build.Tasks;

/// <summary>
/// Resolves every QcowChain and QcowSnapshot item of a project in one call, before anything is written: fills in
/// defaults, plans each chain with the engine (every file of every backing chain), claims every planned output (layers,
/// chain.json files, single exports) in one table, and writes one input stamp per planned output (options, metadata,
/// engine version, size and time or hash of each file the output depends on). The work targets use the stamps as
/// Inputs and the planned files as Outputs, mapped one to one, so only stale outputs are rebuilt. With
/// <see cref="Query"/>, nothing is written (GetQcowImages).
/// </summary>
public sealed class ResolveQcowInputs : QcowTask
{
    /// <summary>QcowChain items: the top image of each chain.</summary>
    public ITaskItem[] Chains { get; set; } = [];

    /// <summary>QcowSnapshot items: source images of single exports.</summary>
    public ITaskItem[] Snapshots { get; set; } = [];

    /// <summary>The project folder; relative paths in metadata are taken from here, and stamps name paths relative to it.</summary>
    [Required] public string ProjectDirectory { get; set; } = "";

    /// <summary>Where the stamps are written (under the intermediate output path).</summary>
    [Required] public string StampDirectory { get; set; } = "";

    /// <summary>Default output folder of chains and single exports (QcowOutputDir).</summary>
    public string DefaultOutputDir { get; set; } = "";

    /// <summary>Default cluster size (QcowClusterSize).</summary>
    public string? DefaultClusterSize { get; set; }

    /// <summary>Default compat (QcowCompat).</summary>
    public string? DefaultCompat { get; set; }

    /// <summary>Default layer name pattern of chains (QcowLayerNamePattern).</summary>
    public string? DefaultNamePattern { get; set; }

    /// <summary>Default compression (QcowCompression: none, zlib, zstd).</summary>
    public string? DefaultCompression { get; set; }

    /// <summary>Default allowed backing paths (QcowAllowedBackingPaths).</summary>
    public string? DefaultAllowedBackingPaths { get; set; }

    /// <summary>Stamp input files by content (SHA-256, cached in the stamp folder) instead of size and time (QcowHashInputs).</summary>
    public bool HashInputs { get; set; }

    /// <summary>Plan only: write no stamp and no cache (a query such as GetQcowImages).</summary>
    public bool Query { get; set; }

    /// <summary>The chains with every setting resolved (full paths, canonical options, ChainId, ChainJson).</summary>
    [Output] public ITaskItem[] ResolvedChains { get; private set; } = [];

    /// <summary>One item per planned layer and per chain.json: the stamp, with metadata OutputFile, ChainId, SourceImage, Snapshot, BackingFile, VirtualSize, Kind.</summary>
    [Output] public ITaskItem[] ChainWork { get; private set; } = [];

    /// <summary>One item per single export: the stamp, with metadata OutputFile, Source and the resolved settings.</summary>
    [Output] public ITaskItem[] SnapshotWork { get; private set; } = [];

    /// <summary>Every stamp file (for FileWrites).</summary>
    [Output] public ITaskItem[] StampFiles { get; private set; } = [];

    /// <summary>
    /// QcowSnapshot items whose source is a layer this project writes: claimed here, resolved by a second call once
    /// the layers are written (so their stamps see the layer as written).
    /// </summary>
    [Output] public ITaskItem[] DeferredSnapshots { get; private set; } = [];

    private readonly Dictionary<string, string> _outputs = new(StringComparer.Ordinal);
    private readonly PendingStamps _stamps = new();
    private readonly List<ITaskItem> _deferred = [];
    private readonly HashSet<QcowWarning> _warned = [];
    private const string ChainOwner = "QcowChain ";
    private InputHashes? _hashes;
    private SourceChecks _checks = null!;

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        ProjectDirectory = Path.GetFullPath(Settings.FixPath(ProjectDirectory));
        _checks = new SourceChecks(Error, BuildEngine);
        if (HashInputs) _hashes = InputHashes.Load(Path.Combine(Full(StampDirectory), "input-hashes.cache"));
        var chains = new List<ITaskItem>();
        var chainWork = new List<ITaskItem>();
        var snapshotWork = new List<ITaskItem>();
        foreach (var item in Chains)
        {
            CancellationToken.ThrowIfCancellationRequested();
            ResolveChain(item, chains, chainWork);
        }
        foreach (var item in Snapshots)
        {
            CancellationToken.ThrowIfCancellationRequested();
            ResolveSnapshot(item, snapshotWork);
        }
        // One bad item or clash stops the build before any stamp (and so any output) is written.
        if (Log.HasLoggedErrors) return;
        if (!Query)
        {
            foreach (string stale in _stamps.Write(FailIfNotIncremental, Log))
                Error(Codes.NotUpToDate, stale, "out of date (an input file, option or the engine changed); a build would rewrite it");
            if (!FailIfNotIncremental && _hashes is { } hashes) TaskFailure.Step(Codes.IoError, Full(StampDirectory), hashes.Save);
        }
        ResolvedChains = [.. chains];
        ChainWork = [.. chainWork];
        SnapshotWork = [.. snapshotWork];
        StampFiles = [.. _stamps.Paths.Select(p => new TaskItem(p))];
        DeferredSnapshots = [.. _deferred];
    }

    private string Full(string path) => Path.GetFullPath(Path.Combine(ProjectDirectory, Settings.FixPath(path)));

    private static string Dir(string path) => Path.EndsInDirectorySeparator(path) ? path : path + Path.DirectorySeparatorChar;

    private Stamp NewStamp(string output) => new(output, ProjectDirectory);

    private string Relative(string path) => Stamp.RelativePath(ProjectDirectory, path);

    /// <summary>
    /// The engine's warnings about an item's inputs (QCOW0100), each logged once per build: this task owns them (it
    /// opens every input; the writing tasks run with InputWarnings off), and items sharing an image share its warning.
    /// </summary>
    private Action<QcowWarning> InputWarning() => w =>
    {
        if (_warned.Add(w)) Warning(Codes.EngineWarning, w.File, w.Message);
    };

    /// <summary>Settings common to both item types; logs QCOW0004 and returns null when invalid.</summary>
    private (Engine.Writing.WriteOptions Options, string[] Allowed)? Common(ITaskItem item)
    {
        try
        {
            var options = Settings.Options(
                Settings.Meta(item, ItemMetadata.ClusterSize, DefaultClusterSize),
                Settings.Meta(item, ItemMetadata.Compat, DefaultCompat),
                Settings.Meta(item, ItemMetadata.Compression, DefaultCompression));
            string[] allowed = Settings.FullPaths(Settings.Meta(item, ItemMetadata.AllowedBackingPaths, DefaultAllowedBackingPaths), ProjectDirectory);
            return (options, allowed);
        }
        catch (QcowException e)
        {
            Error(Codes.InvalidOption, Settings.DefiningProject(item, BuildEngine), $"{item.ItemSpec}: {e.Reason}");
            return null;
        }
    }

    /// <summary>Claims an output for an item; a second claim is QCOW0005 naming both items (every output of the project is in one table).</summary>
    private bool ClaimOutput(string output, string owner, ITaskItem item)
    {
        if (_outputs.TryGetValue(output, out var other))
        {
            Error(Codes.OutputClash, Settings.DefiningProject(item, BuildEngine), $"{output} would be written by both {other} and {owner}; give one of them another OutputDir or OutputFile");
            return false;
        }
        _outputs[output] = owner;
        return true;
    }

    private void ResolveChain(ITaskItem item, List<ITaskItem> chains, List<ITaskItem> work)
    {
        string top = Full(item.ItemSpec);
        if (!_checks.Exists(top, item, "QcowChain top image")) return;
        if (Common(item) is not var (options, allowed)) return;
        if (_checks.Format(item) is not { } format) return;
        string outDir = Dir(Full(Settings.Meta(item, ItemMetadata.OutputDir, DefaultOutputDir)));
        string[] snapshots = Settings.List(item.GetMetadata(ItemMetadata.Snapshots));
        string namePattern = Settings.Meta(item, ItemMetadata.NamePattern, DefaultNamePattern) is { Length: > 0 } np ? np : LinearizeOperation.DefaultNamePattern;
        var request = new LinearizeRequest
        {
            TopImage = top,
            OutputFolder = outDir,
            Options = options,
            NamePattern = namePattern,
            Snapshots = snapshots.Length == 0 ? null : snapshots,
            Policy = Settings.Policy(allowed, InputWarning()),
        };
        ChainPlan plan;
        try
        {
            plan = LinearizeOperation.Plan(request);
        }
        catch (QcowException e)
        {
            Error(Codes.ChainUnreadable, e.FilePath ?? top, e.Reason);
            return;
        }
        if (!_checks.FormatMatches(top, plan.TopFormat, format, item, "QcowChain top image")) return;

        string optionsText = Settings.Describe(options);
        // Ids and stamp texts use paths relative to the project: a copy of the project folder has the same stamps.
        string chainId = Stamp.Id($"{Relative(top)}\n{Relative(outDir)}");
        string stampDir = Path.Combine(Full(StampDirectory), $"{Path.GetFileNameWithoutExtension(top)}-{chainId}");
        string chainJson = Path.Combine(outDir, ChainManifest.FileName);

        var resolved = new TaskItem(top);
        item.CopyMetadataTo(resolved);
        resolved.SetMetadata(ItemMetadata.OutputDir, outDir);
        resolved.SetMetadata(ItemMetadata.ClusterSize, options.ClusterSize.ToString(CultureInfo.InvariantCulture));
        resolved.SetMetadata(ItemMetadata.Compat, Settings.CompatText(options));
        resolved.SetMetadata(ItemMetadata.Compression, Settings.CompressionText(options));
        resolved.SetMetadata(ItemMetadata.AllowedBackingPaths, string.Join(";", allowed));
        resolved.SetMetadata(ItemMetadata.Snapshots, string.Join(";", snapshots));
        resolved.SetMetadata(ItemMetadata.NamePattern, namePattern);
        resolved.SetMetadata(ItemMetadata.Format, format);
        resolved.SetMetadata(ItemMetadata.ChainId, chainId);
        resolved.SetMetadata(ItemMetadata.Chain, top);
        resolved.SetMetadata(ItemMetadata.ChainJson, chainJson);
        chains.Add(resolved);

        string common = $"chain={Relative(top)}\noutputDir={Relative(outDir)}\noptions={optionsText}\nsnapshots={string.Join(";", snapshots)}\n"
            + $"names={namePattern}\nformat={format}\nallowed={string.Join(";", allowed.Select(Relative))}";
        foreach (var layer in plan.Layers)
        {
            string output = Path.Combine(outDir, layer.FileName);
            if (!ClaimOutput(output, ChainOwner + item.ItemSpec, item)) continue;
            var stamp = NewStamp(output).Add("common", common)
                .Add("layer", layer.FileName).Add("backing", layer.BackingFileName).AddPath("source", layer.SourceImage)
                .Add("snapshot", layer.Snapshot).Add("virtualSize", layer.VirtualSize.ToString(CultureInfo.InvariantCulture))
                .Files(plan.DependenciesByImage[layer.SourceImage], _hashes, CancellationToken);
            var w = _stamps.Add(Path.Combine(stampDir, layer.FileName + ".stamp"), stamp, output);
            ChainMetadata(w, ItemMetadata.KindLayer, output, chainId, top);
            w.SetMetadata(ItemMetadata.SourceImage, layer.SourceImage);
            w.SetMetadata(ItemMetadata.Snapshot, layer.Snapshot ?? "");
            w.SetMetadata(ItemMetadata.BackingFile, layer.BackingFileName ?? "");
            w.SetMetadata(ItemMetadata.VirtualSize, layer.VirtualSize.ToString(CultureInfo.InvariantCulture));
            work.Add(w);
        }
        if (!ClaimOutput(chainJson, ChainOwner + item.ItemSpec, item)) return;
        var manifest = NewStamp(chainJson).Add("common", common)
            .Add("layers", string.Join(";", plan.Layers.Select(l => l.FileName)))
            .Files(plan.InputFiles, _hashes, CancellationToken);
        var m = _stamps.Add(Path.Combine(stampDir, ChainManifest.FileName + ".stamp"), manifest, chainJson);
        ChainMetadata(m, ItemMetadata.KindManifest, chainJson, chainId, top);
        work.Add(m);
    }

    private static void ChainMetadata(TaskItem item, string kind, string output, string chainId, string top)
    {
        item.SetMetadata(ItemMetadata.Kind, kind);
        item.SetMetadata(ItemMetadata.OutputFile, output);
        item.SetMetadata(ItemMetadata.ChainId, chainId);
        item.SetMetadata(ItemMetadata.Chain, top);
    }

    private void ResolveSnapshot(ITaskItem item, List<ITaskItem> work)
    {
        string source = Full(item.ItemSpec);
        string snapshot = item.GetMetadata(ItemMetadata.Snapshot).Trim();
        string format = Settings.Meta(item, ItemMetadata.OutputFormat, "qcow2");
        string project = Settings.DefiningProject(item, BuildEngine) ?? "";
        if (format is not ("qcow2" or "raw"))
        {
            Error(Codes.InvalidOption, project, $"{item.ItemSpec}: OutputFormat '{format}': use qcow2 or raw");
            return;
        }
        // The output is claimed first, from metadata alone, so a clash is reported even when the source is bad too.
        string output;
        if (item.GetMetadata(ItemMetadata.OutputFile).Trim() is { Length: > 0 } o)
            output = Full(o);
        else
        {
            // The default name holds the snapshot name: only then must that name be usable in a file name.
            string name = Path.GetFileNameWithoutExtension(source) + (snapshot.Length > 0 ? "_" + snapshot : "") + (format == "raw" ? ".img" : ".qcow2");
            if (!ChainManifest.IsPlainFileName(name))
            {
                Error(Codes.InvalidOption, project, $"{item.ItemSpec}: Snapshot '{snapshot}' cannot be part of the default output name {name}; give OutputFile");
                return;
            }
            output = Path.Combine(Dir(Full(Settings.Meta(item, ItemMetadata.OutputDir, DefaultOutputDir))), name);
        }
        if (!ClaimOutput(output, $"QcowSnapshot {item.ItemSpec}", item)) return;
        if (_outputs.TryGetValue(source, out var owner) && owner.StartsWith(ChainOwner, StringComparison.Ordinal))
        {
            // A layer of this project: a build resolves it after the layers are written; a query lists it once it exists.
            if (!Query) { _deferred.Add(item); return; }
            if (!File.Exists(source)) return;
        }

        if (!_checks.Exists(source, item, "QcowSnapshot source image")) return;
        if (Common(item) is not var (options, allowed)) return;
        if (_checks.Format(item) is not { } sourceFormat) return;
        string diffSnapshot = item.GetMetadata(ItemMetadata.DiffBaseSnapshot).Trim();
        string diffImage = item.GetMetadata(ItemMetadata.DiffBaseImage).Trim();
        string backing = item.GetMetadata(ItemMetadata.BackingFile).Trim();
        string backingFormat = item.GetMetadata(ItemMetadata.BackingFormat).Trim();
        if ((diffSnapshot.Length > 0 || diffImage.Length > 0) && backing.Length == 0)
        {
            Error(Codes.InvalidOption, project, $"{item.ItemSpec}: DiffBaseSnapshot/DiffBaseImage need BackingFile (the image that holds the diff base's content)");
            return;
        }
        string? diffImageFull = diffImage.Length > 0 ? Full(diffImage) : null;
        if (diffImageFull is not null && !_checks.Exists(diffImageFull, item, "QcowSnapshot DiffBaseImage")) return;

        var policy = Settings.Policy(allowed, InputWarning());
        IReadOnlyList<string> files;
        try
        {
            // The source image itself, not a chain plan: its snapshot is looked up in that image only, by any name.
            using var set = new ImageSet(policy);
            if (!_checks.FormatMatches(source, set.Chain(source)[0].Format, sourceFormat, item, "QcowSnapshot source image")) return;
            set.View(source, snapshot.Length > 0 ? snapshot : null);
            if (diffImageFull is not null || diffSnapshot.Length > 0)
                set.View(diffImageFull ?? source, diffSnapshot.Length > 0 ? diffSnapshot : null);
            // Every file of each backing chain (and external data files): the stamp's inputs.
            files = [.. set.OpenedPaths.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];
        }
        catch (QcowException e)
        {
            Error(Codes.ChainUnreadable, e.FilePath ?? source, e.Reason);
            return;
        }

        var stamp = NewStamp(output).AddPath("source", source).Add("sourceFormat", sourceFormat).Add("snapshot", snapshot)
            .Add("diffBaseSnapshot", diffSnapshot).AddPath("diffBaseImage", diffImageFull)
            .Add("backing", backing).Add("backingFormat", backingFormat).Add("format", format)
            .Add("options", Settings.Describe(options)).Add("allowed", string.Join(";", allowed.Select(Relative)))
            .Files(files, _hashes, CancellationToken);
        var w = _stamps.Add(Path.Combine(Full(StampDirectory), "snapshots", $"{Path.GetFileName(output)}-{Stamp.Id(Relative(output))}.stamp"), stamp, output);
        item.CopyMetadataTo(w);
        w.SetMetadata(ItemMetadata.OutputFile, output);
        w.SetMetadata(ItemMetadata.Source, source);
        w.SetMetadata(ItemMetadata.SourceImage, source);
        w.SetMetadata(ItemMetadata.Snapshot, snapshot);
        w.SetMetadata(ItemMetadata.DiffBaseSnapshot, diffSnapshot);
        w.SetMetadata(ItemMetadata.DiffBaseImage, diffImageFull ?? "");
        w.SetMetadata(ItemMetadata.BackingFile, backing);
        w.SetMetadata(ItemMetadata.BackingFormat, backingFormat);
        w.SetMetadata(ItemMetadata.OutputFormat, format);
        w.SetMetadata(ItemMetadata.ClusterSize, options.ClusterSize.ToString(CultureInfo.InvariantCulture));
        w.SetMetadata(ItemMetadata.Compat, Settings.CompatText(options));
        w.SetMetadata(ItemMetadata.Compression, Settings.CompressionText(options));
        w.SetMetadata(ItemMetadata.AllowedBackingPaths, string.Join(";", allowed));
        work.Add(w);
    }
}
