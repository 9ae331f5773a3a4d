using Qcow.Testing;

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

    /// <summary>Writes <c>images.imgproj</c> (<c>Sdk="Qcow.Build.Sdk"</c>, the version from global.json) into <paramref name="folder"/>; returns its path.</summary>
    public static string WriteProject(string folder, string body)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "images.imgproj");
        File.WriteAllText(path, $"""
            <Project Sdk="Qcow.Build.Sdk">
              {body}
            </Project>
            """);
        return path;
    }

    /// <summary>Copies files of the repository's samples/ into <paramref name="folder"/>, the SDK version pointed at this feed, and configures it.</summary>
    public void CopySamples(string folder, params string[] files)
    {
        foreach (var f in files)
        {
            string to = Path.Combine(folder, f);
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(Path.Combine(Repo.Root, "samples", f), to);
            if (f.EndsWith(".imgproj", StringComparison.Ordinal))
                File.WriteAllText(to, File.ReadAllText(to).Replace("Sdk=\"Qcow.Build.Sdk/0.1.0\"", $"Sdk=\"Qcow.Build.Sdk/{Version}\"", StringComparison.Ordinal));
        }
        Configure(folder);
    }

    /// <inheritdoc />
    public void Dispose() => _feed.Dispose();
}
