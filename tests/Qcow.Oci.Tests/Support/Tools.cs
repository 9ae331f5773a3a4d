using System.Diagnostics;

namespace Qcow.Oci.Tests.Support;

/// <summary>
/// The programs the registry tests need. <see cref="Require"/> skips a test with a visible reason when one is
/// missing, and fails it instead when QCOW_REQUIRE_QEMU=1 (as in CI, which installs them).
/// </summary>
public static class Tools
{
    /// <summary>True when CI demands every external tool.</summary>
    public static bool Required => Environment.GetEnvironmentVariable("QCOW_REQUIRE_QEMU") == "1";

    /// <summary>Skips (or, in CI, fails) the calling test unless every program named is on PATH.</summary>
    public static void Require(params string[] programs)
    {
        var missing = programs.Where(p => Find(p) is null).ToList();
        if (missing.Count == 0) return;
        string reason = $"{string.Join(", ", missing)} not installed (apt-get install -y docker-registry apache2-utils jq)";
        if (Required) throw new InvalidOperationException($"QCOW_REQUIRE_QEMU=1 but {reason}");
        Skip.If(true, reason);
    }

    /// <summary>The full path of a program on PATH, or null.</summary>
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    /// <summary>Runs a program (no shell) with extra environment variables; returns exit code and output.</summary>
    public static ProcessResult Run(string exe, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{exe} {string.Join(' ', args)} did not finish in 5 minutes");
        }
        return new ProcessResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>Runs the built <c>qcow</c> CLI as a user would.</summary>
    public static ProcessResult Qcow(IReadOnlyDictionary<string, string?>? environment, params string[] args) =>
        Run("dotnet", [Path.Combine(AppContext.BaseDirectory, "qcow.dll"), .. args], environment);
}

/// <summary>Exit code and output of a child process.</summary>
public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    /// <inheritdoc />
    public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
}
