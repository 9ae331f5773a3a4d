using System.Reflection.PortableExecutable;
using System.Runtime.InteropServices;
using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>
/// The `qcow` tool as the README installs it: `dotnet pack src/Qcow.Cli` gives a package per platform, precompiled
/// (ReadyToRun), and a portable one for every other platform; `dotnet tool install` picks this machine's, which runs.
/// </summary>
public sealed class ToolPackageTests : IDisposable
{
    private readonly TempDir _dir = new("tool");

    public void Dispose() => _dir.Dispose();

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void The_packed_tool_installs_this_platforms_precompiled_package_and_runs()
    {
        Qemu.Require();
        Skip.IfNot(RuntimeInformation.RuntimeIdentifier == "linux-x64", $"packages are precompiled for linux-x64 and linux-arm64; this is {RuntimeInformation.RuntimeIdentifier}");
        // Packed from a copy of the sources: packing builds the tool for each platform, and the test run's own build
        // outputs (which other tests are running) must not change under them.
        string tree = Directory.CreateDirectory(_dir["tree"]).FullName;
        foreach (var file in new[] { "Directory.Build.props", "global.json" })
            File.Copy(Path.Combine(Repo.Root, file), Path.Combine(tree, file));
        foreach (var project in new[] { "Qcow.Cli", "Qcow.Engine", "Qcow.Oci" })
            CopySources(Path.Combine(Repo.Root, "src", project), Path.Combine(tree, "src", project));
        string version = $"0.1.0-tool.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        string feed = Directory.CreateDirectory(_dir["feed"]).FullName;
        Dotnet.Ok(tree, "pack", "src/Qcow.Cli/Qcow.Cli.csproj", "-c", "Release", "-o", feed, $"-p:PackageVersion={version}", "-nodeReuse:false");
        Assert.Equal(
            new[] { "Qcow.Cli", "Qcow.Cli.any", "Qcow.Cli.linux-arm64", "Qcow.Cli.linux-x64" }.Select(n => $"{n}.{version}.nupkg"),
            Directory.GetFiles(feed, "*.nupkg").Select(Path.GetFileName).Order(StringComparer.Ordinal));

        string tools = _dir["tools"];
        Dotnet.Ok(_dir.Path, "tool", "install", "Qcow.Cli", "--version", version, "--tool-path", tools, "--add-source", feed);
        string engine = Assert.Single(Directory.GetFiles(Path.Combine(tools, ".store"), "Qcow.Engine.dll", SearchOption.AllDirectories));
        Assert.Contains($"{Path.DirectorySeparatorChar}qcow.cli.linux-x64{Path.DirectorySeparatorChar}", engine, StringComparison.Ordinal);
        using (var pe = new PEReader(File.OpenRead(engine)))
            Assert.True(pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size > 0, $"{engine} is not precompiled (no ReadyToRun header)");

        string image = _dir["disk.qcow2"];
        Qemu.Img("create", "-f", "qcow2", image, "1G");
        // The command the install puts on the tool path, as a user runs it (exit code 0 is checked).
        var info = Qemu.Run(Path.Combine(tools, "qcow"), ["info", image], [0]);
        Assert.Contains("virtual size: 1 GiB (1073741824 bytes)", info.StdOut);
    }

    /// <summary>Copies a project folder without its build outputs.</summary>
    private static void CopySources(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            string relative = Path.GetRelativePath(from, file);
            if (relative.StartsWith("bin" + Path.DirectorySeparatorChar, StringComparison.Ordinal) ||
                relative.StartsWith("obj" + Path.DirectorySeparatorChar, StringComparison.Ordinal)) continue;
            string target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
