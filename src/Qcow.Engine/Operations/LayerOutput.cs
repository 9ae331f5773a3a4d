using Qcow.Engine.Pipeline;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// One layer of a linearized chain in the <see cref="OutputPipeline"/>: the clusters of its state that differ from the
/// state below, written as a qcow2 file backed by the layer below. Uncompressed layers are planned first, so they
/// are hashed as they are written rather than read back; a layer kept from an earlier run is only hashed.
/// </summary>
/// <param name="layer">The plan of the layer.</param>
/// <param name="path">Where the layer goes.</param>
/// <param name="view">The layer's state.</param>
/// <param name="below">The state below (zeros for the bottom layer).</param>
/// <param name="options">How to write it.</param>
/// <param name="keptHash">For a layer kept from an earlier run (not rewritten): how to learn its SHA-256.</param>
/// <param name="progress">Hears the comparison, the writing and the commit, as output <paramref name="index"/>.</param>
/// <param name="index">The layer's place in the chain, bottom first.</param>
internal sealed class LayerOutput(PlannedLayer layer, string path, DiskView view, DiskView below, WriteOptions options, Func<string>? keptHash,
    OutputProgress? progress, int index)
    : DiffOutput(path, view, below)
{
    private QcowWriter? _writer;
    private string? _sha256;

    public override void Classify(CancellationToken cancel)
    {
        if (keptHash is null && !options.Compress)
            Classify(options, layer.FileName, progress?.Comparing(index), cancel);
    }

    public override bool Write(ChunkPool pool, CancellationToken cancel)
    {
        if (keptHash is not null) return false;
        var output = OutputFile.Create(Target);
        try
        {
            _writer = new QcowWriter(output, View.Size, options, layer.BackingFileName, layer.BackingFileName is null ? null : "qcow2",
                Plan?.Layout, pool);
        }
        catch
        {
            output.Dispose();
            throw;
        }
        WriteState(_writer, layer.FileName, progress?.ComparingAndWriting(index), progress?.Writing(index), layer.FileName, cancel);
        _writer.WriteTables();
        return true;
    }

    public override void Commit()
    {
        if (keptHash is not null)
        {
            _sha256 = keptHash();
            progress?.Committed(index);
            return;
        }
        _sha256 = _writer!.Complete(computeSha256: true);
        Committed(_sha256, new FileInfo(Target).Length);
        _writer.Dispose();
        _writer = null;
        progress?.Committed(index);
    }

    /// <summary>The layer as written (or kept); only after <see cref="Commit"/>.</summary>
    public LayerResult Result => new() { Layer = layer, Path = Target, Stats = Written, Sha256 = _sha256! };

    public override void Dispose()
    {
        _writer?.Dispose();
        _writer = null;
    }
}
