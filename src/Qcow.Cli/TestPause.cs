using Qcow.Engine.Pipeline;

namespace Qcow.Cli;

/// <summary>
/// Test support: <c>QCOW_TEST_PAUSE_AT=STEP</c> holds the process for good at a pipeline step (see
/// <see cref="PipelineHooks"/>) after printing <c>qcow: test hook: paused at STEP</c> to stderr, so a test can kill -9 it
/// at a known point. Not a user feature; undocumented in --help.
/// </summary>
internal static class TestPause
{
    public const string Variable = "QCOW_TEST_PAUSE_AT";

    public static void Install()
    {
        string? at = Environment.GetEnvironmentVariable(Variable);
        if (string.IsNullOrEmpty(at)) return;
        PipelineHooks.OnStep = step =>
        {
            if (step != at) return;
            Console.Error.WriteLine($"qcow: test hook: paused at {step}");
            Console.Error.Flush();
            Thread.Sleep(Timeout.Infinite);
        };
    }
}
