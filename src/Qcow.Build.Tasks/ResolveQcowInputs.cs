using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Engine;
using Qcow.Engine.Operations;

namespace Qcow.Build.Tasks;

/// <summary>
/// Resolves QcowChain and QcowSnapshot items before the work targets run: fills in defaults, plans each chain with
/// the engine (every file of every backing chain), and writes one input stamp per planned output (options, metadata,
/// engine version, size and time of each file the output depends on). The work targets use the stamps as Inputs and
/// the planned files as Outputs, mapped one to one, so only stale outputs are rebuilt.
/// </summary>
public sealed class ResolveQcowInputs : QcowTask
{
    /// <summary>QcowChain items: the top image of each chain.</summary>
    public ITaskItem[] Chains { get; set; } = [];

    /// <summary>QcowSnapshot items: source images of single exports.</summary>
    public ITaskItem[] Snapshots { get; set; } = [];

    /// <summary>The project folder; relative paths in metadata are taken from here.</summary>
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

    /// <summary>Stamp input files by content (SHA-256) instead of size and time (QcowHashInputs).</summary>
    public bool HashInputs { get; set; }

    /// <summary>The chains with every setting resolved (full paths, canonical options, ChainId, ChainJson).</summary>
    [Output] public ITaskItem[] ResolvedChains { get; private set; } = [];

    /// <summary>One item per planned layer and per chain.json: the stamp, with metadata Output, ChainId, SourceImage, Snapshot, BackingFile, VirtualSize, Kind.</summary>
    [Output] public ITaskItem[] ChainWork { get; private set; } = [];

    /// <summary>One item per single export: the stamp, with metadata Output, Source and the resolved settings.</summary>
    [Output] public ITaskItem[] SnapshotWork { get; private set; } = [];

    /// <summary>Every stamp file (for FileWrites).</summary>
    [Output] public ITaskItem[] StampFiles { get; private set; } = [];

    private readonly Dictionary<string, string> _outputs = new(StringComparer.Ordinal);
    private readonly List<ITaskItem> _stamps = [];

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        var chains = new List<ITaskItem>();
        var chainWork = new List<ITaskItem>();
        foreach (var item in Chains)
            ResolveChain(item, chains, chainWork);
        var snapshotWork = new List<ITaskItem>();
        foreach (var item in Snapshots)
            ResolveSnapshot(item, snapshotWork);
        ResolvedChains = [.. chains];
        ChainWork = [.. chainWork];
        SnapshotWork = [.. snapshotWork];
        StampFiles = [.. _stamps];
    }

    private string Full(string path) => Path.GetFullPath(Path.Combine(ProjectDirectory, path));

    private static string Dir(string path) => Path.EndsInDirectorySeparator(path) ? path : path + Path.DirectorySeparatorChar;

    /// <summary>Settings common to both item types; logs QCOW0004 and returns null when invalid.</summary>
    private (Engine.Writing.WriteOptions Options, string[] Allowed)? Common(ITaskItem item)
    {
        try
        {
            var options = Settings.Options(
                Settings.Meta(item, Settings.ClusterSize, DefaultClusterSize),
                Settings.Meta(item, Settings.Compat, DefaultCompat),
                Settings.Meta(item, Settings.Compression, DefaultCompression));
            string[] allowed = Settings.FullPaths(Settings.Meta(item, Settings.AllowedBackingPaths, DefaultAllowedBackingPaths), ProjectDirectory);
            return (options, allowed);
        }
        catch (QcowException e)
        {
            Error(Codes.InvalidOption, Settings.DefiningProject(item, BuildEngine), $"{item.ItemSpec}: {e.Reason}");
            return null;
        }
    }

    private bool SourceExists(string path, ITaskItem item, string what)
    {
        if (File.Exists(path)) return true;
        Error(Codes.SourceNotFound, path, $"{what} not found: {path} (from {item.ItemSpec} in {Path.GetFileName(Settings.DefiningProject(item, BuildEngine))})");
        return false;
    }

    private bool ClaimOutput(string output, string owner, ITaskItem item)
    {
        if (_outputs.TryGetValue(output, out var other))
        {
            Error(Codes.OutputClash, Settings.DefiningProject(item, BuildEngine), $"{output} would be written by both {other} and {owner}; give one of them another OutputDir or Output");
            return false;
        }
        _outputs[output] = owner;
        return true;
    }

    private void ResolveChain(ITaskItem item, List<ITaskItem> chains, List<ITaskItem> work)
    {
        string top = Full(item.ItemSpec);
        if (!SourceExists(top, item, "QcowChain top image")) return;
        if (Common(item) is not var (options, allowed)) return;
        string outDir = Dir(Full(Settings.Meta(item, "OutputDir", DefaultOutputDir)));
        string[] snapshots = Settings.List(item.GetMetadata("Snapshots"));
        string namePattern = Settings.Meta(item, "NamePattern", DefaultNamePattern) is { Length: > 0 } np ? np : Linearizer.DefaultNamePattern;
        var request = new LinearizeRequest
        {
            TopImage = top,
            OutputFolder = outDir,
            Options = options,
            NamePattern = namePattern,
            Snapshots = snapshots.Length == 0 ? null : snapshots,
            Policy = Settings.Policy(allowed, w => Warning(Codes.EngineWarning, top, w)),
        };
        CurrentFile = top;
        CurrentCode = Codes.ChainUnreadable;
        ChainPlan plan;
        try
        {
            plan = Linearizer.Plan(request);
        }
        catch (QcowException e)
        {
            Error(Codes.ChainUnreadable, e.FilePath ?? top, e.Reason);
            return;
        }

        string optionsText = Settings.Describe(options);
        string chainId = Stamp.Id($"{top}\n{outDir}");
        string stampDir = Path.Combine(Full(StampDirectory), $"{Path.GetFileNameWithoutExtension(top)}-{chainId}");
        string chainJson = Path.Combine(outDir, Linearizer.ChainJsonName);

        var resolved = new TaskItem(top);
        item.CopyMetadataTo(resolved);
        resolved.SetMetadata("OutputDir", outDir);
        resolved.SetMetadata(Settings.ClusterSize, options.ClusterSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        resolved.SetMetadata(Settings.Compat, Settings.CompatText(options));
        resolved.SetMetadata(Settings.Compression, Settings.CompressionText(options));
        resolved.SetMetadata(Settings.AllowedBackingPaths, string.Join(";", allowed));
        resolved.SetMetadata("Snapshots", string.Join(";", snapshots));
        resolved.SetMetadata("NamePattern", namePattern);
        resolved.SetMetadata("ChainId", chainId);
        resolved.SetMetadata("Chain", top);
        resolved.SetMetadata("ChainJson", chainJson);
        chains.Add(resolved);

        string common = $"chain={top}\noutputDir={outDir}\noptions={optionsText}\nsnapshots={string.Join(";", snapshots)}\nnames={namePattern}\nallowed={string.Join(";", allowed)}";
        foreach (var layer in plan.Layers)
        {
            string output = Path.Combine(outDir, layer.FileName);
            if (!ClaimOutput(output, $"QcowChain {item.ItemSpec}", item)) continue;
            var stamp = new Stamp(output).Add("common", common)
                .Add("layer", layer.FileName).Add("backing", layer.BackingFileName).Add("source", layer.SourceImage)
                .Add("snapshot", layer.Snapshot).Add("virtualSize", layer.VirtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture))
                .Files(plan.DependenciesByImage[layer.SourceImage], HashInputs);
            var w = WriteStamp(Path.Combine(stampDir, layer.FileName + ".stamp"), stamp);
            if (w is null) continue;
            ChainMetadata(w, "Layer", output, chainId, top);
            w.SetMetadata("SourceImage", layer.SourceImage);
            w.SetMetadata("Snapshot", layer.Snapshot ?? "");
            w.SetMetadata("BackingFile", layer.BackingFileName ?? "");
            w.SetMetadata("VirtualSize", layer.VirtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
            work.Add(w);
        }
        if (!ClaimOutput(chainJson, $"QcowChain {item.ItemSpec}", item)) return;
        var manifest = new Stamp(chainJson).Add("common", common)
            .Add("layers", string.Join(";", plan.Layers.Select(l => l.FileName)))
            .Files(plan.InputFiles, HashInputs);
        var m = WriteStamp(Path.Combine(stampDir, Linearizer.ChainJsonName + ".stamp"), manifest);
        if (m is null) return;
        ChainMetadata(m, "Manifest", chainJson, chainId, top);
        work.Add(m);
    }

    private static void ChainMetadata(TaskItem item, string kind, string output, string chainId, string top)
    {
        item.SetMetadata("Kind", kind);
        item.SetMetadata("OutputFile", output);
        item.SetMetadata("ChainId", chainId);
        item.SetMetadata("Chain", top);
    }

    private void ResolveSnapshot(ITaskItem item, List<ITaskItem> work)
    {
        string source = Full(item.ItemSpec);
        if (!SourceExists(source, item, "QcowSnapshot source image")) return;
        if (Common(item) is not var (options, allowed)) return;
        string snapshot = item.GetMetadata("Snapshot").Trim();
        string diffSnapshot = item.GetMetadata("DiffBaseSnapshot").Trim();
        string diffImage = item.GetMetadata("DiffBaseImage").Trim();
        string backing = item.GetMetadata("BackingFile").Trim();
        string backingFormat = item.GetMetadata("BackingFormat").Trim();
        string format = Settings.Meta(item, "OutputFormat", "qcow2");
        string project = Settings.DefiningProject(item, BuildEngine) ?? "";
        if (format is not ("qcow2" or "raw"))
        {
            Error(Codes.InvalidOption, project, $"{item.ItemSpec}: OutputFormat '{format}': use qcow2 or raw");
            return;
        }
        if ((diffSnapshot.Length > 0 || diffImage.Length > 0) && backing.Length == 0)
        {
            Error(Codes.InvalidOption, project, $"{item.ItemSpec}: DiffBaseSnapshot/DiffBaseImage need BackingFile (the image that holds the diff base's content)");
            return;
        }
        string? diffImageFull = diffImage.Length > 0 ? Full(diffImage) : null;
        if (diffImageFull is not null && !SourceExists(diffImageFull, item, "QcowSnapshot DiffBaseImage")) return;

        string stem = Path.GetFileNameWithoutExtension(source) + (snapshot.Length > 0 ? "_" + snapshot : "");
        string output = item.GetMetadata("OutputFile").Trim() is { Length: > 0 } o
            ? Full(o)
            : Path.Combine(Dir(Full(Settings.Meta(item, "OutputDir", DefaultOutputDir))), stem + (format == "raw" ? ".img" : ".qcow2"));
        if (!ClaimOutput(output, $"QcowSnapshot {item.ItemSpec}", item)) return;

        var policy = Settings.Policy(allowed, w => Warning(Codes.EngineWarning, source, w));
        var files = new List<string>();
        try
        {
            // The engine's plan lists every file of each backing chain; naming the snapshot checks it exists.
            files.AddRange(Linearizer.Plan(new LinearizeRequest { TopImage = source, OutputFolder = Path.GetDirectoryName(output)!, Policy = policy, Snapshots = snapshot.Length > 0 ? [snapshot] : null }).InputFiles);
            if (diffImageFull is not null)
                files.AddRange(Linearizer.Plan(new LinearizeRequest { TopImage = diffImageFull, OutputFolder = Path.GetDirectoryName(output)!, Policy = policy, Snapshots = diffSnapshot.Length > 0 ? [diffSnapshot] : null }).InputFiles);
            else if (diffSnapshot.Length > 0)
                Linearizer.Plan(new LinearizeRequest { TopImage = source, OutputFolder = Path.GetDirectoryName(output)!, Policy = policy, Snapshots = [diffSnapshot] });
        }
        catch (QcowException e)
        {
            Error(Codes.ChainUnreadable, e.FilePath ?? source, e.Reason);
            return;
        }

        var stamp = new Stamp(output).Add("source", source).Add("snapshot", snapshot)
            .Add("diffBaseSnapshot", diffSnapshot).Add("diffBaseImage", diffImageFull)
            .Add("backing", backing).Add("backingFormat", backingFormat).Add("format", format)
            .Add("options", Settings.Describe(options)).Add("allowed", string.Join(";", allowed))
            .Files(files.Distinct(StringComparer.Ordinal), HashInputs);
        var w = WriteStamp(Path.Combine(Full(StampDirectory), "snapshots", $"{Path.GetFileName(output)}-{Stamp.Id(output)}.stamp"), stamp);
        if (w is null) return;
        item.CopyMetadataTo(w);
        w.SetMetadata("OutputFile", output);
        w.SetMetadata("Source", source);
        w.SetMetadata("SourceImage", source);
        w.SetMetadata("Snapshot", snapshot);
        w.SetMetadata("DiffBaseSnapshot", diffSnapshot);
        w.SetMetadata("DiffBaseImage", diffImageFull ?? "");
        w.SetMetadata("BackingFile", backing);
        w.SetMetadata("BackingFormat", backingFormat);
        w.SetMetadata("OutputFormat", format);
        w.SetMetadata(Settings.ClusterSize, options.ClusterSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        w.SetMetadata(Settings.Compat, Settings.CompatText(options));
        w.SetMetadata(Settings.Compression, Settings.CompressionText(options));
        w.SetMetadata(Settings.AllowedBackingPaths, string.Join(";", allowed));
        work.Add(w);
    }

    /// <summary>Writes the stamp when its text changed (under -question: reports it instead); returns its item.</summary>
    private TaskItem? WriteStamp(string path, Stamp stamp)
    {
        _stamps.Add(new TaskItem(path));
        if (!stamp.IsCurrent(path))
        {
            if (FailIfNotIncremental)
            {
                Error(Codes.NotUpToDate, path, "input stamp is out of date (an input file, option or the engine changed); a build would rebuild its output");
                return null;
            }
            CurrentFile = path;
            CurrentCode = Codes.IoError;
            stamp.Write(path);
            Log.LogMessage(MessageImportance.Low, $"Wrote input stamp {path}");
        }
        return new TaskItem(path);
    }
}
