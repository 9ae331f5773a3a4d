using Qcow.Engine.Tests.Infrastructure;

namespace Qcow.Build.Tests.Support;

/// <summary>
/// The SDK and template packages, packed once per test run into a temporary feed with a fresh prerelease version
/// (NuGet caches packages by version), from the build the tests were built with (no build of its own).
/// </summary>
public sealed class PackedSdk : IDisposable
{
    private readonly TempDir _feed = new("feed");

    /// <summary>Packs both packages.</summary>
    public PackedSdk()
    {
        Version = $"0.1.0-e2e.{DateTime.UtcNow:yyyyMMddHHmmss}.{Environment.ProcessId}";
        foreach (var project in new[] { "sdk/Qcow.Build.Sdk/Qcow.Build.Sdk.csproj", "sdk/Qcow.Build.Templates/Qcow.Build.Templates.csproj" })
            Dotnet.Ok(Repo.Root, "pack", project, "-c", Repo.Configuration, "--no-build", "-o", _feed.Path, $"-p:PackageVersion={Version}", "-nodeReuse:false");
    }

    /// <summary>The package version packed.</summary>
    public string Version { get; }

    /// <summary>The feed folder.</summary>
    public string Feed => _feed.Path;

    /// <summary>The template package.</summary>
    public string TemplatePackage => Path.Combine(Feed, $"Qcow.Build.Templates.{Version}.nupkg");

    /// <summary>Writes global.json (msbuild-sdks) and a nuget.config (cleared sources, this feed, its own packages folder) into <paramref name="folder"/>.</summary>
    public void Configure(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "global.json"), $$"""
            { "msbuild-sdks": { "Qcow.Build.Sdk": "{{Version}}" } }
            """);
        File.WriteAllText(Path.Combine(folder, "nuget.config"), $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="e2e" value="{Feed}" />
              </packageSources>
              <config>
                <add key="globalPackagesFolder" value="{Path.Combine(folder, ".packages")}" />
              </config>
            </configuration>
            """);
    }

    /// <inheritdoc />
    public void Dispose() => _feed.Dispose();
}
