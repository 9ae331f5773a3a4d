using Qcow.Engine.Pipeline;
using Qcow.Engine.Views;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Operations;

/// <summary>
/// An output of the <see cref="OutputPipeline"/> that stores a state as what differs from the state below it (a layer
/// of a chain, or an export): from a <see cref="DiffPlan"/> made by <see cref="Classify"/>, or in one pass that
/// compares as it writes; its <see cref="LayerStats"/> are complete once it is committed.
/// </summary>
/// <param name="target">Where the output goes (for a stream, its name).</param>
/// <param name="view">The state to write.</param>
/// <param name="below">The state below (null: unread, <c>-B</c>'s promise).</param>
internal abstract class DiffOutput(string target, DiskView view, DiskView? below) : PipelineOutput(target)
{
    private LayerStats? _stats;

    /// <summary>The state written.</summary>
    protected DiskView View => view;

    /// <summary>The plan, when <see cref="Classify"/> made one.</summary>
    protected DiffPlan? Plan { get; private set; }

    /// <summary>What writing cost; complete (hash, file size) after <see cref="Committed"/>; null for a layer kept as it was.</summary>
    protected LayerStats? Written => _stats;

    /// <summary>Plans the output: compares the state with the one below and records how each cluster is stored.</summary>
    protected DiffPlan? Classify(WriteOptions options, string stage, Action<ProgressInfo>? progress, CancellationToken cancel, int maxRuns = DiffPlan.MaxRuns) =>
        Plan = DiffWriter.Classify(view, below, options, stage, progress, cancel, maxRuns);

    /// <summary>
    /// Writes the state into <paramref name="sink"/>: from the plan when there is one (the sink is then the qcow2 writer
    /// laid out by it; <paramref name="planned"/> hears it as <paramref name="plannedStage"/>), otherwise in one pass
    /// (<paramref name="onePass"/> hears it as <paramref name="stage"/>).
    /// </summary>
    protected void WriteState(IClusterSink sink, string stage, Action<ProgressInfo>? onePass, Action<ProgressInfo>? planned, string plannedStage,
        CancellationToken cancel) =>
        _stats = Plan is null
            ? DiffWriter.Write(view, below, sink, stage, onePass, cancel)
            : DiffWriter.Emit(Plan, view, (QcowWriter)sink, cancel, planned, plannedStage);

    /// <summary>Completes the stats once the output is in place: its hash, its size and the virtual size written.</summary>
    protected LayerStats Committed(string? sha256, long fileSize) =>
        _stats = _stats! with { Sha256 = sha256, FileSize = fileSize, VirtualSize = view.Size };
}
