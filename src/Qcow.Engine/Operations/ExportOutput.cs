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
internal sealed class ExportOutput : PipelineOutput
{
    private readonly ConvertRequest _request;
    private readonly DiskView _top;
    private readonly DiskView? _below;
    private readonly OutputFile? _file;
    private readonly string? _backingName;
    private readonly string? _backingFormat;
    private readonly Action<ProgressInfo>? _progress;
    private readonly int _maxStreamRuns;
    private readonly string _stage;
    private DiffPlan? _plan;
    private IClusterSink? _sink;
    private LayerStats? _stats;

    /// <param name="request">The conversion.</param>
    /// <param name="top">The state to export.</param>
    /// <param name="below">What the output's backing file holds (null: unread, <c>-B</c>'s promise).</param>
    /// <param name="file">The output file when not a stream (made before the long first pass, so it is refused early).</param>
    /// <param name="backingName">The backing file name to record.</param>
    /// <param name="backingFormat">The backing format to record.</param>
    /// <param name="progress">Hears the comparison and (for a stream) the writing.</param>
    /// <param name="maxStreamRuns">The bound of a stream's plan.</param>
    public ExportOutput(ConvertRequest request, DiskView top, DiskView? below, OutputFile? file, string? backingName, string? backingFormat,
        Action<ProgressInfo>? progress, int maxStreamRuns)
        : base(request.Output)
    {
        _request = request;
        _top = top;
        _below = below;
        _file = file;
        _backingName = backingName;
        _backingFormat = backingFormat;
        _progress = progress;
        _maxStreamRuns = maxStreamRuns;
        _stage = Path.GetFileName(request.Output);
    }

    private bool Qcow2 => _request.OutputFormat == "qcow2";

    private Stream? Stream => _request.OutputStream;

    public override void Classify(CancellationToken cancel)
    {
        if (!Qcow2 || (Stream is null && !(_request.ComputeSha256 && !_request.Options.Compress))) return;
        _plan = DiffWriter.Classify(_top, _below, _request.Options, _stage, _progress, cancel,
            Stream is null ? DiffPlan.MaxRuns : _maxStreamRuns);
        if (_plan is null && Stream is not null)
            throw new QcowException(_request.Output, $"the clusters to write are scattered over more than {_maxStreamRuns} runs, " +
                "too many to plan a stream in bounded memory; write to a file instead");
    }

    public override bool Write(ChunkPool pool, CancellationToken cancel)
    {
        var options = _request.Options;
        _sink = (Stream, _file) switch
        {
            (not null, _) when Qcow2 => new QcowWriter(Stream, _request.Output, _top.Size, options, _plan!.Layout, _backingName,
                _backingFormat, _request.ComputeSha256, pool),
            (not null, _) => new RawWriter(Stream, _request.Output, _top.Size, options, _request.ComputeSha256),
            _ when Qcow2 => new QcowWriter(_file!, _top.Size, options, _backingName, _backingFormat, _plan?.Layout, pool),
            _ => new RawWriter(_file!, _top.Size, options),
        };
        // A stream's second pass is as long as its first: show it too.
        _stats = _plan is not null
            ? DiffWriter.Emit(_plan, _top, (QcowWriter)_sink, cancel, Stream is null ? null : _progress, $"{_stage} (writing)")
            : DiffWriter.Write(_top, _below, _sink, _stage, _progress, cancel);
        return true;
    }

    public override void Commit()
    {
        string? sha = _sink!.Commit(_request.ComputeSha256);
        long length = _file is not null ? new FileInfo(_file.TargetPath).Length : _sink is QcowWriter q ? q.Length : _top.Size;
        _stats = _stats! with { Sha256 = sha, FileSize = length, VirtualSize = _top.Size };
    }

    /// <summary>What the export cost; only after <see cref="Commit"/>.</summary>
    public LayerStats Stats => _stats!;

    public override void Dispose()
    {
        _sink?.Dispose();
        _file?.Dispose();
    }
}
