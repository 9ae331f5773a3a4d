using System.Diagnostics;

namespace Qcow.Testing;

/// <summary>
/// The tests' one runner of the built <c>qcow</c> CLI (copied beside each test assembly), as a user runs it: to
/// completion, or started so a test can kill it.
/// </summary>
public static class QcowProcess
{
    /// <summary>qcow.dll beside the test assembly (each test project references Qcow.Cli).</summary>
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "qcow.dll");

    /// <summary>Runs qcow to completion; returns exit code (any) and output.</summary>
    public static ProcessResult Run(params string[] args) => Run(args, timeout: null);

    /// <summary>
    /// Runs qcow to completion (any exit code), in <paramref name="workingDirectory"/>; <paramref name="timeout"/>
    /// (default 5 minutes) only keeps a hung run from hanging the test run.
    /// </summary>
    public static ProcessResult Run(string[] args, TimeSpan? timeout = null, string? workingDirectory = null) =>
        Qemu.Run("dotnet", [Dll, .. args], Enumerable.Range(0, 256).ToArray(), workingDirectory, timeout);

    /// <summary>Runs qcow to completion with extra environment variables (credentials, DOCKER_CONFIG, ...).</summary>
    public static ProcessResult RunWith(IReadOnlyDictionary<string, string?>? environment, params string[] args) =>
        Qemu.Run("dotnet", [Dll, .. args], Enumerable.Range(0, 256).ToArray(), environment: environment);

    /// <summary>Starts qcow without waiting; output is discarded.</summary>
    public static Process Start(params string[] args) => Start(null, args, _ => { });

    /// <summary>
    /// Starts qcow held at a pipeline step (the CLI's <c>QCOW_TEST_PAUSE_AT</c> test hook) and returns once it is
    /// there, so the caller can kill it at exactly that point. Fails if qcow ends, or does not get there in 2 minutes.
    /// </summary>
    public static Process StartPausedAt(string step, params string[] args)
    {
        using var paused = new ManualResetEventSlim();
        var stderr = new System.Text.StringBuilder();
        var p = Start(step, args, line =>
        {
            lock (stderr) stderr.AppendLine(line);
            if (line == $"qcow: test hook: paused at {step}") paused.Set();
        });
        if (!paused.Wait(TimeSpan.FromMinutes(2)))
        {
            if (!p.HasExited) p.Kill();
            p.WaitForExit();
            lock (stderr) throw new Xunit.Sdk.XunitException($"qcow {string.Join(' ', args)} never reached {step} (exit {p.ExitCode}): {stderr}");
        }
        return p;
    }

    private static Process Start(string? pauseAt, string[] args, Action<string> onStdErr)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (pauseAt is not null) psi.Environment["QCOW_TEST_PAUSE_AT"] = pauseAt;
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) onStdErr(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
