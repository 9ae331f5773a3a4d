using Qcow.Engine.Chain;
using Qcow.Engine.Pipeline;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>The state a diff is taken against (<c>convert -d [base_image=IMAGE,]snapshot=SNAPSHOT</c>).</summary>
/// <param name="Snapshot">The snapshot of the base image (or of the source when <paramref name="BaseImage"/> is null); null: its current state.</param>
/// <param name="BaseImage">Another image to diff against, or null for the source itself.</param>
public sealed record DiffBase(string? Snapshot, string? BaseImage = null)
{
    /// <summary>Parses <c>[base_image=IMAGE,]snapshot=SNAPSHOT</c>.</summary>
    public static DiffBase Parse(string text)
    {
        string? snapshot = null, baseImage = null;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = part.IndexOf('=');
            string key = eq < 0 ? "" : part[..eq], value = eq < 0 ? part : part[(eq + 1)..];
            switch (key)
            {
                case "snapshot": snapshot = value; break;
                case "base_image": baseImage = value; break;
                case "snapshot.id": case "snapshot.name": snapshot = part; break;
                default:
                    throw new QcowException(null, $"-d {text}: '{part}' is not base_image=IMAGE or snapshot=SNAPSHOT");
            }
        }
        if (snapshot is null && baseImage is null)
            throw new QcowException(null, $"-d {text}: give snapshot=SNAPSHOT, base_image=IMAGE, or both");
        return new DiffBase(snapshot, baseImage);
    }
}

/// <summary>What <c>qcow convert</c> should do.</summary>
public sealed record ConvertRequest
{
    /// <summary>The source image.</summary>
    public required string Source { get; init; }
    /// <summary>Source snapshot (<c>-s</c>/<c>-l</c>), or null for the current state.</summary>
    public string? SourceSnapshot { get; init; }
    /// <summary>The output path; with <see cref="OutputStream"/>, only the name of the output in messages.</summary>
    public required string Output { get; init; }
    /// <summary>
    /// Write the image to this stream instead of a file: front to back, each byte once, never seeking (standard output,
    /// a pipe), the same bytes a file would get. It is flushed, not closed. A backing file given by an absolute path
    /// is stored relative to the current folder.
    /// </summary>
    public Stream? OutputStream { get; init; }
    /// <summary>"qcow2" (default) or "raw".</summary>
    public string OutputFormat { get; init; } = "qcow2";
    /// <summary>Cluster size, compat and compression of the output.</summary>
    public WriteOptions Options { get; init; } = WriteOptions.Default;
    /// <summary>The output's backing file name, written as given (<c>-B</c>).</summary>
    public string? BackingFile { get; init; }
    /// <summary>The output's backing format (<c>-F</c>); defaults to qcow2 when a backing file is given.</summary>
    public string? BackingFormat { get; init; }
    /// <summary>Write only what differs from this state (<c>-d</c>); needs a backing file.</summary>
    public DiffBase? Diff { get; init; }
    /// <summary>Hash the output (SHA-256).</summary>
    public bool ComputeSha256 { get; init; }
    /// <summary>Where backing files of the sources may be.</summary>
    public BackingPolicy? Policy { get; init; }
}

/// <summary>
/// <c>qcow convert</c>: a full export of a state (current or snapshot, at that state's own virtual size), an
/// export on top of a backing file (<c>-B</c>, qemu's semantics), or a diff export (<c>-d</c>).
/// </summary>
public static class ConvertOperation
{
    /// <summary>Runs the conversion; the output appears only when complete.</summary>
    public static LayerStats Run(ConvertRequest request, Action<ProgressInfo>? progress = null, CancellationToken cancel = default) =>
        Run(request, progress, cancel, DiffPlan.MaxStreamRuns);

    /// <summary>As <see cref="Run(ConvertRequest, Action{ProgressInfo}, CancellationToken)"/>, with the bound of a stream's plan given (tests).</summary>
    internal static LayerStats Run(ConvertRequest request, Action<ProgressInfo>? progress, CancellationToken cancel, int maxStreamRuns)
    {
        request.Options.Validate();
        if (request.OutputFormat is not ("qcow2" or "raw"))
            throw new QcowException(request.Output, $"output format '{request.OutputFormat}' is not supported (qcow2, raw)");
        if (request.Diff is not null && request.BackingFile is null)
            throw new QcowException(request.Output, "convert -d needs -B BACKING: the image that holds the diff base's content");
        if (request.OutputFormat == "raw" && (request.BackingFile is not null || request.Options.Compress))
            throw new QcowException(request.Output, "raw output cannot have a backing file or compression");

        using var set = new ImageSet(request.Policy);
        var top = set.View(request.Source, request.SourceSnapshot);
        DiskView? below;
        if (request.Diff is { } diff)
            below = set.View(diff.BaseImage ?? request.Source, diff.Snapshot);
        else if (request.BackingFile is not null)
            below = null;
        else
            below = new ZeroView(top.Size);

        var stream = request.OutputStream;
        if (stream is null)
        {
            // The guards are about files: a stream names none.
            OutputGuard.RefuseOverwritingInputs(set, request.Output);
            if (request.BackingFile is not null)
                OutputGuard.RefuseBackingIsOutput(request.Output, request.BackingFile);
        }

        // Store the backing file relative to the output's folder, so an export folder can be moved as a whole.
        string outputFolder = stream is null ? Path.GetDirectoryName(Path.GetFullPath(request.Output))! : Environment.CurrentDirectory;
        string? backingName = request.BackingFile is { } bf && Path.IsPathRooted(bf)
            ? Path.GetRelativePath(outputFolder, bf).Replace('\\', '/')
            : request.BackingFile;
        string? backingFormat = request.BackingFile is null ? null : request.BackingFormat ?? "qcow2";
        // A file may be created (and refused) before the long first pass.
        var file = stream is null ? OutputFile.Create(request.Output) : null;
        var export = new ExportOutput(request, top, below, file, backingName, backingFormat, progress, maxStreamRuns);
        OutputPipeline.Run([export], [0], cancel);
        return export.Stats;
    }
}
