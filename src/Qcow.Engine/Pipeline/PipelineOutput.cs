using Qcow.Engine.Writing;

namespace Qcow.Engine.Pipeline;

/// <summary>
/// One output of an <see cref="OutputPipeline"/> run: a layer or an export. The pipeline calls each stage once, in
/// order, each on its stage's thread, and disposes every output when the run ends, whatever happened.
/// </summary>
internal abstract class PipelineOutput : IDisposable
{
    protected PipelineOutput(string target) => Target = target;

    /// <summary>The output's path (for a stream, its name): it names the output in errors.</summary>
    public string Target { get; }

    /// <summary>The output's file name, as hook steps name it.</summary>
    public string Name => Path.GetFileName(Target);

    /// <summary>
    /// Stage 1 (the classifier thread, in write order): compares the state with the one below and plans the output,
    /// when it is written from a plan. May do nothing.
    /// </summary>
    public abstract void Classify(CancellationToken cancel);

    /// <summary>
    /// Stage 2 (the caller's thread, in write order): writes the output to its temporary file or stream, with buffers
    /// from <paramref name="pool"/>; not yet flushed or renamed. False when there was nothing to write (a layer kept
    /// from an earlier run).
    /// </summary>
    public abstract bool Write(ChunkPool pool, CancellationToken cancel);

    /// <summary>
    /// Stage 3 (the commit thread, outputs in order, each after the one below): finishes the writes, hashes, flushes
    /// and renames the output into place.
    /// </summary>
    public abstract void Commit();

    /// <summary>Releases what the output holds; an output not committed leaves no temporary file behind.</summary>
    public abstract void Dispose();
}
