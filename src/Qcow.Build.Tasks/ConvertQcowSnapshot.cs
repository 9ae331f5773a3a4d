using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Engine;
using Qcow.Engine.Operations;

namespace Qcow.Build.Tasks;

/// <summary>
/// One export with <see cref="ConvertOperation.Run(ConvertRequest, Action{ProgressInfo}, CancellationToken)"/>: a source image at a snapshot (or its current state), optionally
/// only what differs from a diff base (<c>qemu-img convert -d</c> semantics), optionally on top of a backing file.
/// </summary>
public sealed class ConvertQcowSnapshot : QcowTask
{
    /// <summary>The source image.</summary>
    [Required] public ITaskItem Source { get; set; } = null!;

    /// <summary>The output path.</summary>
    [Required] public string Output { get; set; } = "";

    /// <summary>The source snapshot (name or id); empty: the current state.</summary>
    public string? Snapshot { get; set; }

    /// <summary>Diff base: a snapshot of <see cref="DiffBaseImage"/> (or of the source); empty: its current state.</summary>
    public string? DiffBaseSnapshot { get; set; }

    /// <summary>Diff base: another image; empty: the source itself.</summary>
    public string? DiffBaseImage { get; set; }

    /// <summary>The output's backing file name, written as given (needed with a diff base).</summary>
    public string? BackingFile { get; set; }

    /// <summary>The output's backing format (default qcow2).</summary>
    public string? BackingFormat { get; set; }

    /// <summary>qcow2 (default) or raw.</summary>
    public string? OutputFormat { get; set; }

    /// <summary>Cluster size (65536, 64k, ...).</summary>
    public string? ClusterSize { get; set; }

    /// <summary>1.1 or 0.10.</summary>
    public string? Compat { get; set; }

    /// <summary>none, zlib or zstd.</summary>
    public string? Compression { get; set; }

    /// <summary>Extra folders or files backing files may be in (<c>;</c> separated).</summary>
    public string? AllowedBackingPaths { get; set; }

    /// <summary>The input stamp of the output (set by the SDK's targets): recorded as built once the output is complete.</summary>
    public string? Stamp { get; set; }

    /// <summary>
    /// Log the engine's warnings about the inputs (QCOW0100; default true). The SDK's targets set it false: the
    /// resolve step (ResolveQcowInputs) has already logged them, and a build warns once per image.
    /// </summary>
    public bool InputWarnings { get; set; } = true;

    /// <summary>The output, with metadata SourceImage, Snapshot, BackingFile, Sha256.</summary>
    [Output] public ITaskItem? OutputItem { get; private set; }

    private static string? Empty(string? s) => string.IsNullOrWhiteSpace(s) ? null : s.Trim();

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        string source = Source.GetMetadata(ItemMetadata.FullPath);
        string output = Path.GetFullPath(Settings.FixPath(Output));
        string dir = Path.GetDirectoryName(BuildEngine?.ProjectFileOfTaskNode) ?? Environment.CurrentDirectory;
        var options = TaskFailure.Step(Codes.InvalidOption, output, () => Settings.Options(ClusterSize, Compat, Compression));
        if (!File.Exists(source))
        {
            Error(Codes.SourceNotFound, source, $"source image not found: {source}");
            return;
        }
        DiffBase? diff = Empty(DiffBaseSnapshot) is null && Empty(DiffBaseImage) is null
            ? null
            : new DiffBase(Empty(DiffBaseSnapshot), Empty(DiffBaseImage) is { } d ? Path.GetFullPath(Path.Combine(dir, Settings.FixPath(d))) : null);
        if (FailIfNotIncremental)
        {
            Error(Codes.NotUpToDate, output, "output is out of date; a build would write it");
            return;
        }
        var request = new ConvertRequest
        {
            Source = source,
            SourceSnapshot = Empty(Snapshot),
            Output = output,
            OutputFormat = Empty(OutputFormat) ?? "qcow2",
            Options = options,
            BackingFile = Empty(BackingFile),
            BackingFormat = Empty(BackingFormat),
            Diff = diff,
            ComputeSha256 = true,
            Policy = Settings.Policy(Settings.FullPaths(AllowedBackingPaths, dir), InputWarnings ? w => Warning(Codes.EngineWarning, w.File, w.Message) : null),
        };
        Log.LogMessage(MessageImportance.High, $"Exporting {source}{(request.SourceSnapshot is { } s ? $" at {s}" : "")} to {output}");
        var stats = TaskFailure.Step(Codes.WriteFailed, output, () => ConvertOperation.Run(request, Progress(), CancellationToken));
        Log.LogMessage(MessageImportance.High,
            $"  {Path.GetFileName(output)}: {stats.DataClusters} data + {stats.ZeroClusters} zero clusters, {Mib(stats.FileSize)}, read {Mib(stats.BytesRead)}");
        var item = new TaskItem(output);
        item.SetMetadata(ItemMetadata.SourceImage, source);
        item.SetMetadata(ItemMetadata.Snapshot, request.SourceSnapshot ?? "");
        item.SetMetadata(ItemMetadata.BackingFile, request.BackingFile ?? "");
        item.SetMetadata(ItemMetadata.Sha256, stats.Sha256 ?? "");
        item.SetMetadata(ItemMetadata.VirtualSize, stats.VirtualSize.ToString(System.Globalization.CultureInfo.InvariantCulture));
        OutputItem = item;
        if (Empty(Stamp) is { } stamp) TaskFailure.Step(Codes.IoError, output, () => Tasks.Stamp.MarkBuilt(stamp, output));
    }
}
