using Qcow.Engine.Pipeline;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// The one output of <c>qcow convert</c> in the <see cref="OutputPipeline"/>: a qcow2 or raw image, to a file or a
/// stream. A qcow2 header points at tables that follow the data. A file may get it last (one pass); a stream cannot
/// seek back, so it is planned first. When a hash is wanted, uncompressed files are planned too, so they are hashed
/// as they are written rather than read back; compressed files keep the one pass (compressing once).
/// </summary>
/// <param name="request">The conversion.</param>
/// <param name="top">The state to export.</param>
/// <param name="below">What the output's backing file holds (null: unread, <c>-B</c>'s promise).</param>
/// <param name="file">The output file when not a stream (made before the long first pass, so it is refused early).</param>
/// <param name="backingName">The backing file name to record.</param>
/// <param name="backingFormat">The backing format to record.</param>
/// <param name="progress">Hears the comparison and (for a stream) the writing.</param>
/// <param name="maxStreamRuns">The bound of a stream's plan.</param>
internal sealed class ExportOutput(ConvertRequest request, DiskView top, DiskView? below, OutputFile? file, string? backingName,
    string? backingFormat, Action<ProgressInfo>? progress, int maxStreamRuns)
    : DiffOutput(request.Output, top, below)
{
    private readonly string _stage = Path.GetFileName(request.Output);
    private IClusterSink? _sink;

    private bool Qcow2 => request.OutputFormat == "qcow2";

    private Stream? Stream => request.OutputStream;

    public override void Classify(CancellationToken cancel)
    {
        if (!Qcow2 || (Stream is null && !(request.ComputeSha256 && !request.Options.Compress))) return;
        var plan = Classify(request.Options, _stage, progress, cancel, Stream is null ? DiffPlan.MaxRuns : maxStreamRuns);
        if (plan is null && Stream is not null)
            throw new QcowException(request.Output, $"the clusters to write are scattered over more than {maxStreamRuns} runs, " +
                "too many to plan a stream in bounded memory; write to a file instead");
    }

    public override bool Write(ChunkPool pool, CancellationToken cancel)
    {
        var options = request.Options;
        _sink = (Stream, file) switch
        {
            (not null, _) when Qcow2 => new QcowWriter(Stream, request.Output, View.Size, options, Plan!.Layout, backingName,
                backingFormat, request.ComputeSha256, pool),
            (not null, _) => new RawWriter(Stream, request.Output, View.Size, options, request.ComputeSha256),
            _ when Qcow2 => new QcowWriter(file!, View.Size, options, backingName, backingFormat, Plan?.Layout, pool),
            _ => new RawWriter(file!, View.Size, options),
        };
        // A stream's second pass is as long as its first: show it too.
        WriteState(_sink, _stage, progress, Stream is null ? null : progress, $"{_stage} (writing)", cancel);
        return true;
    }

    public override void Commit()
    {
        string? sha = _sink!.Commit(request.ComputeSha256);
        long length = file is not null ? new FileInfo(file.TargetPath).Length : _sink is QcowWriter q ? q.Length : View.Size;
        Committed(sha, length);
    }

    /// <summary>What the export cost; only after <see cref="Commit"/>.</summary>
    public LayerStats Stats => Written!;

    public override void Dispose()
    {
        _sink?.Dispose();
        file?.Dispose();
    }
}
