namespace Qcow.Engine.Tests.Infrastructure;

/// <summary>Runs the built <c>qcow</c> CLI as a child process, as a user would.</summary>
public static class QcowCli
{
    private static string Dll => Path.Combine(AppContext.BaseDirectory, "qcow.dll");

    /// <summary>Runs qcow with arguments; returns exit code and output (any exit code).</summary>
    public static ProcessResult Run(params string[] args) =>
        Qemu.Run("dotnet", [Dll, .. args], Enumerable.Range(0, 256).ToArray());
}
