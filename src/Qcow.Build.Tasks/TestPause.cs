using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Engine.Pipeline;

namespace Qcow.Build.Tasks;

/// <summary>
/// Test support, as the CLI's: with <c>QCOW_TEST_PAUSE_AT=STEP</c> in the build's environment, a task holds its
/// pipeline at that step (see <see cref="PipelineHooks"/>) after logging <c>qcow: test hook: paused at STEP</c>, until
/// the build is cancelled (then the step fails as cancelled) or killed; so a test interrupts the build at a known point
/// instead of polling for a file. The tasks run in MSBuild's node processes, which inherit the variable. Not a user
/// feature.
/// </summary>
internal static class TestPause
{
    private const string Variable = "QCOW_TEST_PAUSE_AT";

    /// <summary>Holds <paramref name="log"/>'s task at the step named by the variable, if set; dispose to remove the hold.</summary>
    public static IDisposable? Install(TaskLoggingHelper log, CancellationToken cancel)
    {
        string? at = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(at)) return null;
        PipelineHooks.OnStep = step =>
        {
            if (step != at) return;
            log.LogMessage(MessageImportance.High, $"qcow: test hook: paused at {step}");
            cancel.WaitHandle.WaitOne();
            cancel.ThrowIfCancellationRequested();
        };
        return new Removal();
    }

    // A node process runs many tasks: the hold ends with the task that installed it.
    private sealed class Removal : IDisposable
    {
        public void Dispose() => PipelineHooks.OnStep = null;
    }
}
