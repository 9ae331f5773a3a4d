using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.Json;
using Qcow.Build.Tests.Support;
using Qcow.Testing;

namespace Qcow.Build.Tests;

/// <summary>
/// The SDK package ships its task assemblies precompiled (ReadyToRun) for linux-x64 beside the portable .deps.json;
/// a build through it works with the precompiled code and with it ignored, as on every other platform.
/// </summary>
[Collection(SeedCollection.Name)]
public sealed class SdkPackageTests(SeedChain seed, PackedSdk sdk) : IClassFixture<PackedSdk>, IDisposable
{
    private readonly TempDir _dir = new("sdk-package");

    /// <summary>What crossgen2 puts in the COFF machine field of a linux-x64 image: AMD64 xor Linux's OS value.</summary>
    private const ushort LinuxX64Machine = 0x8664 ^ 0x7B79;

    [Fact]
    public void The_task_assemblies_in_the_package_are_precompiled_for_linux_x64_and_the_deps_json_is_the_portable_one()
    {
        using var package = ZipFile.OpenRead(Path.Combine(sdk.Feed, $"Qcow.Build.Sdk.{sdk.Version}.nupkg"));
        var tools = package.Entries.Where(e => e.FullName.StartsWith("tools/net10.0/", StringComparison.Ordinal))
            .ToDictionary(e => e.Name, StringComparer.Ordinal);

        // Every assembly the tasks' portable build has (the tasks, the engine, Qcow.Oci, their dependencies), and no other.
        string built = Path.GetDirectoryName(Repo.TasksAssembly)!;
        var assemblies = Directory.GetFiles(built, "*.dll").Select(f => Path.GetFileName(f)).Order(StringComparer.Ordinal).ToList();
        Assert.Contains("Qcow.Build.Tasks.dll", assemblies);
        Assert.Contains("Qcow.Engine.dll", assemblies);
        Assert.Contains("Qcow.Oci.dll", assemblies);
        Assert.Equal(assemblies, tools.Keys.Where(n => n.EndsWith(".dll", StringComparison.Ordinal)).Order(StringComparer.Ordinal));

        foreach (string name in assemblies)
        {
            using var copy = new MemoryStream();
            using (var s = tools[name].Open()) s.CopyTo(copy);
            copy.Position = 0;
            using var pe = new PEReader(copy);
            Assert.True(pe.PEHeaders.CorHeader!.ManagedNativeHeaderDirectory.Size > 0, $"{name} is not precompiled (no ReadyToRun header)");
            Assert.Equal(LinuxX64Machine, (ushort)pe.PEHeaders.CoffHeader.Machine);
            // The IL stays (another platform JITs it), and the metadata is the portable build's: same name and version.
            Assert.True(pe.HasMetadata, $"{name} has no metadata");
            Assert.Equal(
                System.Reflection.AssemblyName.GetAssemblyName(Path.Combine(built, name)).FullName,
                pe.GetMetadataReader().GetAssemblyDefinition().GetAssemblyName().FullName);
        }

        // The loader's .deps.json: no runtime identifier, naming exactly those assemblies.
        using var deps = JsonDocument.Parse(tools["Qcow.Build.Tasks.deps.json"].Open());
        Assert.Equal(".NETCoreApp,Version=v10.0", deps.RootElement.GetProperty("runtimeTarget").GetProperty("name").GetString());
        var named = deps.RootElement.GetProperty("targets").GetProperty(".NETCoreApp,Version=v10.0").EnumerateObject()
            .SelectMany(l => l.Value.TryGetProperty("runtime", out var r) ? r.EnumerateObject().Select(f => Path.GetFileName(f.Name)) : [])
            .Order(StringComparer.Ordinal);
        Assert.Equal(assemblies, named);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void A_build_through_the_package_gives_the_same_chain_with_the_precompiled_code_used_and_ignored()
    {
        // DOTNET_ReadyToRun=0 makes the runtime ignore precompiled code, as it does for another platform's: the
        // tasks then run from their IL alone.
        string chainJson = "";
        foreach (var (name, readyToRun) in new[] { ("used", "1"), ("ignored", "0") })
        {
            string folder = _dir[name];
            seed.CopyTo(Path.Combine(folder, "images"));
            sdk.Configure(folder);
            string proj = PackedSdk.WriteProject(folder, """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
            var (code, output) = Dotnet.RunWith(new Dictionary<string, string> { ["DOTNET_ReadyToRun"] = readyToRun }, folder, "build", proj, "-nodeReuse:false");
            Assert.True(code == 0, $"build with DOTNET_ReadyToRun={readyToRun} exited {code}:\n{output}");
            string outDir = Path.Combine(folder, "bin", "Debug");
            seed.AssertLayersCorrect(outDir);
            string text = File.ReadAllText(Path.Combine(outDir, "chain.json"));
            if (chainJson.Length == 0) chainJson = text;
            else Assert.Equal(chainJson, text);
        }
    }

    /// <inheritdoc />
    public void Dispose() => _dir.Dispose();
}
