using System.Diagnostics;
using System.Text;

namespace Qcow.Build.Tests.Support;

/// <summary>Runs the dotnet CLI as a child process, as a user would (no node reuse, no telemetry).</summary>
public static class Dotnet
{
    /// <summary>Runs <c>dotnet args</c> in <paramref name="folder"/>; returns the exit code and the merged output.</summary>
    public static (int ExitCode, string Output) Run(string folder, params string[] args) => RunWith(null, folder, args);

    /// <summary>Runs <c>dotnet args</c> with extra environment variables (e.g. NUGET_PACKAGES).</summary>
    public static (int ExitCode, string Output) RunWith(IReadOnlyDictionary<string, string>? environment, string folder, params string[] args) =>
        Wait(Start("dotnet", folder, args, out var output, environment, _ => { }), output, $"dotnet {string.Join(' ', args)}");

    /// <summary>Runs a bash script (<c>bash -e</c>, as a CI step runs) that calls dotnet; returns the exit code and the merged output.</summary>
    public static (int ExitCode, string Output) Bash(IReadOnlyDictionary<string, string>? environment, string folder, string script) =>
        Wait(Start("bash", folder, ["-e", "-c", script], out var output, environment, _ => { }), output, $"bash -c {script}");

    private static (int ExitCode, string Output) Wait(Process process, StringBuilder output, string what)
    {
        using var p = process;
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{what} timed out");
        }
        p.WaitForExit();
        lock (output) return (p.ExitCode, output.ToString());
    }

    /// <summary>Runs dotnet and asserts it succeeded; returns its output.</summary>
    public static string Ok(string folder, params string[] args)
    {
        var (code, output) = Run(folder, args);
        Assert.True(code == 0, $"dotnet {string.Join(' ', args)} exited {code}:\n{output}");
        return output;
    }

    /// <summary>Starts dotnet; output lines are appended to <paramref name="output"/>.</summary>
    public static Process Start(string folder, string[] args, out StringBuilder output, IReadOnlyDictionary<string, string>? environment = null) =>
        Start("dotnet", folder, args, out output, environment, _ => { });

    /// <summary>
    /// Starts dotnet and returns once an output line contains <paramref name="marker"/> (e.g. the tasks' test hook
    /// saying it holds the build at a step), so the caller interrupts it at that point. Fails if dotnet ends first.
    /// </summary>
    public static Process StartUntil(string marker, string folder, string[] args, out StringBuilder output, IReadOnlyDictionary<string, string>? environment = null)
    {
        using var seen = new ManualResetEventSlim();
        using var ended = new ManualResetEventSlim();
        var p = Start("dotnet", folder, args, out output, environment, line => { if (line.Contains(marker, StringComparison.Ordinal)) seen.Set(); });
        p.Exited += (_, _) => ended.Set();
        if (p.HasExited) ended.Set();
        // The marker, or the end of the process; the bound only keeps a hung build from hanging the test run.
        int which = WaitHandle.WaitAny([seen.WaitHandle, ended.WaitHandle], TimeSpan.FromMinutes(10));
        if (which != 0)
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
            p.WaitForExit();
            // The exit may have raced the last output lines: the marker may be there after all.
            if (!seen.IsSet)
                lock (output) throw new Xunit.Sdk.XunitException($"dotnet {string.Join(' ', args)} ended (exit {p.ExitCode}) without printing '{marker}':\n{output}");
        }
        return p;
    }

    private static Process Start(string program, string folder, string[] args, out StringBuilder output, IReadOnlyDictionary<string, string>? environment, Action<string> onLine)
    {
        var psi = new ProcessStartInfo(program)
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The test host's MSBuild registration must not leak into the child.
        foreach (var v in new[] { "MSBUILD_EXE_PATH", "MSBuildExtensionsPath", "MSBuildSDKsPath", "MSBuildLoadMicrosoftTargetsReadOnly" })
            psi.Environment.Remove(v);
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var sb = new StringBuilder();
        output = sb;
        var p = new Process { StartInfo = psi, EnableRaisingEvents = true };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (sb) sb.AppendLine(e.Data); onLine(e.Data); } };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (sb) sb.AppendLine(e.Data); onLine(e.Data); } };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
