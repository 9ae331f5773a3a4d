using System.Diagnostics;
using Qcow.Engine.Tests.Infrastructure;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>Runs the built <c>qcow</c> CLI as a child process: to completion, or started so a test can kill it.</summary>
public static class QcowProcess
{
    private static string Dll => Path.Combine(AppContext.BaseDirectory, "qcow.dll");

    /// <summary>Runs qcow to completion (any exit code), within <paramref name="timeout"/> (default 2 minutes).</summary>
    public static ProcessResult Run(string[] args, TimeSpan? timeout = null) =>
        Qemu.Run("dotnet", [Dll, .. args], Enumerable.Range(0, 256).ToArray(), timeout: timeout ?? TimeSpan.FromMinutes(2));

    /// <summary>Starts qcow without waiting; output is discarded.</summary>
    public static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.OutputDataReceived += (_, _) => { };
        p.ErrorDataReceived += (_, _) => { };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }
}
