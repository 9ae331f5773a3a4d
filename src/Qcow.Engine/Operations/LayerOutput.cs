using Qcow.Engine.Pipeline;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// One layer of a linearized chain in the <see cref="OutputPipeline"/>: the clusters of its state that differ from the
/// state below, written as a qcow2 file backed by the layer below. Uncompressed layers are planned first, so they
/// are hashed as they are written rather than read back; a layer kept from an earlier run is only hashed.
/// </summary>
internal sealed class LayerOutput : PipelineOutput
{
    private readonly PlannedLayer _layer;
    private readonly DiskView _view;
    private readonly DiskView _below;
    private readonly WriteOptions _options;
    private readonly Func<string>? _keptHash;
    private readonly OutputProgress? _progress;
    private readonly int _index;
    private DiffPlan? _plan;
    private QcowWriter? _writer;
    private LayerStats? _stats;
    private string? _sha256;

    /// <param name="layer">The plan of the layer.</param>
    /// <param name="path">Where the layer goes.</param>
    /// <param name="view">The layer's state.</param>
    /// <param name="below">The state below (zeros for the bottom layer).</param>
    /// <param name="options">How to write it.</param>
    /// <param name="keptHash">For a layer kept from an earlier run (not rewritten): how to learn its SHA-256.</param>
    /// <param name="progress">Hears the comparison, the writing and the commit, as output <paramref name="index"/>.</param>
    /// <param name="index">The layer's place in the chain, bottom first.</param>
    public LayerOutput(PlannedLayer layer, string path, DiskView view, DiskView below, WriteOptions options, Func<string>? keptHash,
        OutputProgress? progress, int index)
        : base(path)
    {
        _layer = layer;
        _view = view;
        _below = below;
        _options = options;
        _keptHash = keptHash;
        _progress = progress;
        _index = index;
    }

    public override void Classify(CancellationToken cancel)
    {
        if (_keptHash is null && !_options.Compress)
            _plan = DiffWriter.Classify(_view, _below, _options, _layer.FileName, _progress?.Comparing(_index), cancel);
    }

    public override bool Write(ChunkPool pool, CancellationToken cancel)
    {
        if (_keptHash is not null) return false;
        var output = OutputFile.Create(Target);
        try
        {
            _writer = new QcowWriter(output, _view.Size, _options, _layer.BackingFileName, _layer.BackingFileName is null ? null : "qcow2",
                _plan?.Layout, pool);
        }
        catch
        {
            output.Dispose();
            throw;
        }
        _stats = _plan is null
            ? DiffWriter.Write(_view, _below, _writer, _layer.FileName, _progress?.ComparingAndWriting(_index), cancel)
            : DiffWriter.Emit(_plan, _view, _writer, cancel, _progress?.Writing(_index), _layer.FileName);
        _writer.WriteTables();
        return true;
    }

    public override void Commit()
    {
        if (_keptHash is not null)
        {
            _sha256 = _keptHash();
            _progress?.Committed(_index);
            return;
        }
        _sha256 = _writer!.Complete(computeSha256: true);
        _stats = _stats! with { Sha256 = _sha256, FileSize = new FileInfo(Target).Length };
        _writer.Dispose();
        _writer = null;
        _progress?.Committed(_index);
    }

    /// <summary>The layer as written (or kept); only after <see cref="Commit"/>.</summary>
    public LayerResult Result => new() { Layer = _layer, Path = Target, Stats = _stats, Sha256 = _sha256! };

    public override void Dispose()
    {
        _writer?.Dispose();
        _writer = null;
    }
}
