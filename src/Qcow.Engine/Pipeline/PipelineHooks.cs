namespace Qcow.Engine.Pipeline;

/// <summary>
/// Named points in the write pipeline where a test can hold a run (kill -9, cancel) or make it fail, at a known step
/// instead of after a guessed delay. Steps: <c>classified:FILE</c> (an output's clusters are compared and planned),
/// <c>written:FILE</c> (an output is fully written to its temporary file, not yet flushed or renamed),
/// <c>hashing:FILE</c> (the first chunk of an output hashed while written, on its hash thread),
/// <c>committed:FILE</c> (a layer is renamed into place) and <c>chain-json</c> (every layer is in place, chain.json not
/// yet written). An exception thrown by the hook is a failure of that stage. Unset outside tests.
/// </summary>
/// <remarks>
/// The hooks flow with the execution context (<see cref="AsyncLocal{T}"/>): a test sees the steps of the runs it
/// starts, on every thread they use, and not those of tests running beside it.
/// </remarks>
internal static class PipelineHooks
{
    private static readonly AsyncLocal<Action<string>?> StepHook = new();
    private static readonly AsyncLocal<Action<PipelineEnd>?> EndHook = new();

    /// <summary>Called synchronously, on the stage's own thread, at each step.</summary>
    internal static Action<string>? OnStep
    {
        get => StepHook.Value;
        set => StepHook.Value = value;
    }

    /// <summary>Called when a pipeline run has ended (successfully or not) and released what it held.</summary>
    internal static Action<PipelineEnd>? OnEnd
    {
        get => EndHook.Value;
        set => EndHook.Value = value;
    }

    internal static void Step(string name) => StepHook.Value?.Invoke(name);

    internal static void End(PipelineEnd end) => EndHook.Value?.Invoke(end);
}

/// <summary>What a pipeline run still held when it ended: all zero unless something leaked.</summary>
/// <param name="ChunksOutstanding">Buffers handed out and never given back.</param>
/// <param name="ChunksAllocated">Buffers allocated and not freed.</param>
/// <param name="ThreadsRunning">Background threads of its outputs still running.</param>
/// <param name="StagesRunning">Stages (classify, commit) still running.</param>
internal readonly record struct PipelineEnd(int ChunksOutstanding, int ChunksAllocated, int ThreadsRunning, int StagesRunning);
