namespace Qcow.Engine.Operations;

/// <summary>
/// Named points in the write pipelines where a test can hold a run, so that it interrupts (kill -9, cancel) at a
/// known step instead of after a guessed delay. Steps: <c>written:FILE</c> (a layer or export is fully written to its
/// temporary file, not yet flushed or renamed), <c>committed:FILE</c> (a layer is renamed into place) and
/// <c>chain-json</c> (every layer is in place, chain.json not yet written). Unset outside tests.
/// </summary>
internal static class PipelineHooks
{
    /// <summary>Called synchronously, on the pipeline's own thread, at each step.</summary>
    internal static Action<string>? OnStep { get; set; }

    internal static void Step(string name) => OnStep?.Invoke(name);
}
