using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.Json;
using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>
/// The SDK package ships its task assemblies twice: portable (IL only) for every host, and precompiled (ReadyToRun)
/// for linux-x64, which loads on Linux x64 only (elsewhere it is a BadImageFormatException, not a fallback to the IL);
/// a build picks the set its host can load, and both give the same chain.
/// </summary>
[Collection(SeedCollection.Name)]
public sealed class SdkPackageTests(SeedChain seed, PackedSdk sdk) : IClassFixture<PackedSdk>, IDisposable
{
    private readonly TempDir _dir = new("sdk-package");

    /// <summary>What crossgen2 puts in the COFF machine field of a linux-x64 image: AMD64 xor Linux's OS value.</summary>
    private const ushort LinuxX64Machine = 0x8664 ^ 0x7B79;

    /// <summary>The COFF machine of a portable (AnyCPU) assembly.</summary>
    private const ushort AnyCpuMachine = 0x014C;

    [Fact]
    public void The_package_has_the_task_assemblies_portable_and_precompiled_for_linux_x64_with_the_portable_deps_json()
    {
        using var package = ZipFile.OpenRead(Path.Combine(sdk.Feed, $"Qcow.Build.Sdk.{sdk.Version}.nupkg"));
        Dictionary<string, ZipArchiveEntry> Folder(string prefix) => package.Entries
            .Where(e => e.FullName.StartsWith(prefix, StringComparison.Ordinal) && !e.FullName[prefix.Length..].Contains('/'))
            .ToDictionary(e => e.Name, StringComparer.Ordinal);
        var portable = Folder("tools/net10.0/");
        var linuxX64 = Folder("tools/net10.0/linux-x64/");

        // Every assembly the tasks' portable build has (the tasks, the engine, Qcow.Oci, their dependencies), and no other.
        string built = Path.GetDirectoryName(Repo.TasksAssembly)!;
        var assemblies = Directory.GetFiles(built, "*.dll").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
        Assert.Contains("Qcow.Build.Tasks.dll", assemblies);
        Assert.Contains("Qcow.Engine.dll", assemblies);
        Assert.Contains("Qcow.Oci.dll", assemblies);
        foreach (var set in new[] { portable, linuxX64 })
            Assert.Equal(assemblies, set.Keys.Where(n => n.EndsWith(".dll", StringComparison.Ordinal)).Order(StringComparer.Ordinal));

        foreach (string name in assemblies)
        {
            using (var pe = Read(portable[name]))
            {
                Assert.True(pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size == 0, $"{name} in tools/net10.0/ is precompiled: it would not load on other hosts");
                Assert.Equal(AnyCpuMachine, (ushort)pe.PEHeaders.CoffHeader.Machine);
            }
            using (var pe = Read(linuxX64[name]))
            {
                Assert.True(pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size > 0, $"{name} in tools/net10.0/linux-x64/ is not precompiled (no ReadyToRun header)");
                Assert.Equal(LinuxX64Machine, (ushort)pe.PEHeaders.CoffHeader.Machine);
                // The metadata is the portable build's: same name and version.
                Assert.Equal(
                    System.Reflection.AssemblyName.GetAssemblyName(Path.Combine(built, name)).FullName,
                    pe.GetMetadataReader().GetAssemblyDefinition().GetAssemblyName().FullName);
            }
        }

        // The loader's .deps.json, the same in both: no runtime identifier, naming exactly those assemblies.
        Assert.Equal(Bytes(portable["Qcow.Build.Tasks.deps.json"]), Bytes(linuxX64["Qcow.Build.Tasks.deps.json"]));
        using var deps = JsonDocument.Parse(portable["Qcow.Build.Tasks.deps.json"].Open());
        Assert.Equal(".NETCoreApp,Version=v10.0", deps.RootElement.GetProperty("runtimeTarget").GetProperty("name").GetString());
        var named = deps.RootElement.GetProperty("targets").GetProperty(".NETCoreApp,Version=v10.0").EnumerateObject()
            .SelectMany(l => l.Value.TryGetProperty("runtime", out var r) ? r.EnumerateObject().Select(f => Path.GetFileName(f.Name)) : [])
            .Order(StringComparer.Ordinal);
        Assert.Equal(assemblies, named);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void A_linux_x64_build_uses_the_precompiled_tasks_and_the_portable_ones_give_the_same_chain()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64,
            "the precompiled tasks are for Linux x64 hosts");
        string chainJson = "";
        string? portableTasks = null;
        foreach (string name in new[] { "precompiled", "portable" })
        {
            string folder = _dir[name];
            seed.CopyTo(Path.Combine(folder, "images"));
            sdk.Configure(folder);
            string proj = PackedSdk.WriteProject(folder, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
            // The portable set, as every other host picks it.
            string[] args = portableTasks is null ? ["build", proj, "-nodeReuse:false", "-v:d"] : ["build", proj, "-nodeReuse:false", "-v:d", $"-p:QcowTasksAssembly={portableTasks}"];
            var (code, output) = Dotnet.Run(folder, args);
            Assert.True(code == 0, $"build ({name}) exited {code}:\n{output}");
            // MSBuild says which assembly each task came from.
            var from = System.Text.RegularExpressions.Regex.Match(output, "Using \"LinearizeQcowChain\" task from assembly \"([^\"]+)\"");
            Assert.True(from.Success, "no 'Using \"LinearizeQcowChain\" task from assembly' line in the log");
            string used = from.Groups[1].Value.Replace('\\', '/');
            if (portableTasks is null)
            {
                Assert.EndsWith("/tools/net10.0/linux-x64/Qcow.Build.Tasks.dll", used);
                portableTasks = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(used)!, "..", "Qcow.Build.Tasks.dll"));
            }
            else
            {
                Assert.Equal(portableTasks, Path.GetFullPath(used));
            }
            string outDir = Path.Combine(folder, "bin", "Debug");
            seed.AssertLayersCorrect(outDir);
            string text = File.ReadAllText(Path.Combine(outDir, "chain.json"));
            if (chainJson.Length == 0) chainJson = text;
            else Assert.Equal(chainJson, text);
        }
    }

    private static PEReader Read(ZipArchiveEntry entry) => new(new MemoryStream(Bytes(entry)));

    private static byte[] Bytes(ZipArchiveEntry entry)
    {
        using var copy = new MemoryStream();
        using (var s = entry.Open()) s.CopyTo(copy);
        return copy.ToArray();
    }

    /// <inheritdoc />
    public void Dispose() => _dir.Dispose();
}
