using System.Text.Json;
using System.Text.RegularExpressions;
using Qcow.Build.Tests.Support;
using Qcow.Testing;
using Qcow.Oci;
using Qcow.Testing.Registry;

namespace Qcow.Build.Tests;

/// <summary>
/// <c>dotnet publish</c> with <c>QcowRegistry</c> set (issue #14 point 4), through the packed SDK against a real
/// docker-registry on 127.0.0.1: what is pushed is pulled back byte-identical, the output line and the returned
/// <c>QcowPushedImage</c> item, nothing uploaded again, only changed blobs uploaded, errors and secrets.
/// </summary>
[Collection(SeedCollection.Name)]
public sealed partial class RegistryPublishTests(SeedChain seed, PackedSdk sdk, RegistryFixture registry)
    : IClassFixture<PackedSdk>, IClassFixture<RegistryFixture>, IDisposable
{
    private readonly TempDir _dir = new("publish-registry");

    /// <summary>A project folder with the seed chain in images/, global.json and nuget.config; returns the project path.</summary>
    private string Project(string name, string file, string body)
    {
        string folder = _dir[name];
        seed.CopyTo(Path.Combine(folder, "images"));
        sdk.Configure(folder);
        string path = Path.Combine(folder, file);
        File.WriteAllText(path, $"""<Project Sdk="Qcow.Build.Sdk">{body}</Project>""");
        return path;
    }

    /// <summary><c>dotnet publish</c> with no docker config of the user's and no credentials unless given.</summary>
    private (int ExitCode, string Output) Publish(string proj, IReadOnlyDictionary<string, string>? credentials, params string[] args)
    {
        var env = new Dictionary<string, string>
        {
            ["DOCKER_CONFIG"] = _dir["no-docker-config"],
            [CredentialSource.UserNameVariable] = "",
            [CredentialSource.PasswordVariable] = "",
        };
        foreach (var (k, v) in credentials ?? new Dictionary<string, string>()) env[k] = v;
        return Dotnet.RunWith(env, Path.GetDirectoryName(proj)!, ["publish", proj, "-nodeReuse:false", .. args]);
    }

    private string PublishOk(string proj, params string[] args)
    {
        var (code, output) = Publish(proj, null, args);
        Assert.True(code == 0, $"dotnet publish exited {code}:\n{output}\nregistry:\n{registry.Server.Log}");
        return output;
    }

    /// <summary>The one QcowPushedImage item of a publish run with <c>-getItem:QcowPushedImage</c>.</summary>
    private static Dictionary<string, string> PushedItem(string output)
    {
        using var doc = JsonDocument.Parse(output[output.IndexOf('{', StringComparison.Ordinal)..]);
        var item = Assert.Single(doc.RootElement.GetProperty("Items").GetProperty("QcowPushedImage").EnumerateArray());
        return item.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "");
    }

    /// <summary>The distinct lines holding <paramref name="code"/> (MSBuild repeats errors in its summary).</summary>
    private static List<string> Lines(string output, string code) =>
        output.Split('\n').Select(l => l.Trim()).Where(l => l.Contains(code, StringComparison.Ordinal)).Select(WithoutTimestamp).Distinct().ToList();

    /// <summary>A line without the <c>16:07:24.641   1:7&gt;</c> that -v:diag puts before it.</summary>
    private static string WithoutTimestamp(string line) => DiagPrefix().Replace(line, "");

    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d+\s+\d+:\d+>")]
    private static partial Regex DiagPrefix();

    /// <summary>Layer file -> SHA-256, from chain.json.</summary>
    private static Dictionary<string, string> LayerHashes(string chainJson)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(chainJson));
        return doc.RootElement.GetProperty("layers").EnumerateArray()
            .ToDictionary(l => l.GetProperty("file").GetString()!, l => l.GetProperty("sha256").GetString()!);
    }

    /// <summary>Pulls <paramref name="reference"/> into a new folder and asserts it is byte-identical to <paramref name="built"/>; returns the digest.</summary>
    private string AssertPullsAs(string reference, string built, string folder)
    {
        var result = ChainPull.RunAsync(new PullRequest { Reference = ImageReference.Parse(reference), Folder = folder }, registry.Server.Options())
            .GetAwaiter().GetResult();
        string[] files = [.. LayerHashes(Path.Combine(built, "chain.json")).Keys, "chain.json"];
        Assert.Equal(files.Order(StringComparer.Ordinal), Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var f in files)
            Assert.Equal(FileHash.Sha256(Path.Combine(built, f)), FileHash.Sha256(Path.Combine(folder, f)));
        return result.Digest;
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Publish_pushes_the_chain_logs_and_returns_the_pinned_reference_and_uploads_only_changed_blobs_again()
    {
        var server = registry.Server;
        string proj = Project("push", "VmImages.imgproj", """
            <PropertyGroup><Version>1.4.0</Version></PropertyGroup>
            <ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>
            """);
        string built = _dir["push/bin/Release"];

        // Defaults: repository = project name in lower case, tag = $(Version). Every blob (7 layers, chain.json, the
        // empty config) is uploaded; nothing is copied into PublishDir.
        string first = PublishOk(proj, $"-p:QcowRegistry={server.Host}");
        var line = OutputLine().Match(first);
        Assert.True(line.Success, first);
        Assert.Equal($"{server.Host}/vmimages", line.Groups["repo"].Value);
        Assert.Equal("tags 1.4.0; 9 blobs uploaded", line.Groups["rest"].Value);
        string digest = line.Groups["digest"].Value;
        string publishDir = _dir["push/bin/Release/publish"]; // the .NET SDK makes the folder; nothing is copied into it
        Assert.False(Directory.Exists(publishDir) && Directory.EnumerateFileSystemEntries(publishDir).Any(), "files copied into PublishDir");
        Assert.Equal(digest, AssertPullsAs($"{server.Host}/vmimages:1.4.0", built, _dir["pulled1"]));
        seed.AssertLayersCorrect(_dir["pulled1"]);

        // Again, with two tags (quoted, as MSBuild needs for ;): the same manifest, no blob uploaded, both tags name it.
        var second = PushedItem(PublishOk(proj, $"-p:QcowRegistry={server.Host}", "-p:QcowImageTags=\"1.4.0;latest\"", "-getItem:QcowPushedImage"));
        Assert.Equal($"{server.Host}/vmimages@{digest}", second["Identity"]);
        Assert.Equal(digest, second["Digest"]);
        Assert.Equal(server.Host, second["Registry"]);
        Assert.Equal("vmimages", second["Repository"]);
        Assert.Equal("1.4.0;latest", second["Tags"]);
        Assert.Equal("0", second["BlobsUploaded"]);
        Assert.Equal("9", second["BlobsSkipped"]);
        Assert.Equal(Path.Combine(built, "chain.json"), second["ChainJson"]);
        Assert.Equal(digest, AssertPullsAs($"{server.Host}/vmimages:latest", built, _dir["pulled2"]));

        // imageC changed: exactly the layers whose bytes changed, and chain.json, are uploaded.
        var before = LayerHashes(Path.Combine(built, "chain.json"));
        Qemu.Io(_dir["push/images/imageC.qcow2"], "write -P 0x77 0 64k");
        var third = PushedItem(PublishOk(proj, $"-p:QcowRegistry={server.Host}", "-getItem:QcowPushedImage"));
        var after = LayerHashes(Path.Combine(built, "chain.json"));
        int changed = after.Count(l => before[l.Key] != l.Value);
        Assert.InRange(changed, 1, 6);
        Assert.Equal((changed + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), third["BlobsUploaded"]);
        Assert.Equal((9 - changed - 1).ToString(System.Globalization.CultureInfo.InvariantCulture), third["BlobsSkipped"]);
        Assert.NotEqual(digest, third["Digest"]);
        Assert.Equal(third["Digest"], AssertPullsAs($"{server.Host}/vmimages:1.4.0", built, _dir["pulled3"]));
        Qemu.AssertIdentical(_dir["push/images/imageC.qcow2"], Path.Combine(_dir["pulled3"], "imageC.qcow2"));
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void QcowMaxConcurrentUploads_is_how_many_blobs_go_up_at_once_the_manifest_is_the_same_and_a_bad_value_is_one_QCOW0004()
    {
        var server = registry.Server;
        string proj = Project("concurrency", "images.imgproj", """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        string built = _dir["concurrency/bin/Release"];
        var bound = TimeSpan.FromMinutes(2);

        // One at a time: the 9 blobs (7 layers, chain.json, the empty config) never overlap.
        string one;
        using (var proxy = new UploadProxy(server.Host, hold: 0, bound))
        {
            var item = PushedItem(PublishOk(proj, $"-p:QcowRegistry={proxy.Host}", "-p:QcowRepository=concurrency/one",
                "-p:QcowMaxConcurrentUploads=1", "-getItem:QcowPushedImage"));
            Assert.Equal("9", item["BlobsUploaded"]);
            Assert.Equal((9, 1), (proxy.Uploads, proxy.MaxInFlight));
            one = item["Digest"];
        }

        // Four at a time: the first uploads are held until four are in flight, which only four at once reach (the
        // default of three would wait for ever; the bound turns that into a failure). The same manifest.
        using (var proxy = new UploadProxy(server.Host, hold: 4, bound))
        {
            var item = PushedItem(PublishOk(proj, $"-p:QcowRegistry={proxy.Host}", "-p:QcowRepository=concurrency/four",
                "-p:QcowMaxConcurrentUploads=4", "-getItem:QcowPushedImage"));
            Assert.False(proxy.HoldTimedOut, "fewer than four blob uploads were ever in flight at once");
            Assert.Equal((9, 4), (proxy.Uploads, proxy.MaxInFlight));
            Assert.Equal("9", item["BlobsUploaded"]);
            Assert.Equal(one, item["Digest"]);
        }
        Assert.Equal(one, AssertPullsAs($"{server.Host}/concurrency/four:1.0.0", built, _dir["concurrency-pulled"]));

        // Not a number from 1 to 64: one error naming the property, against the project; nothing pushed.
        foreach (string bad in new[] { "0", "many" })
        {
            var (code, output) = Publish(proj, null, $"-p:QcowRegistry={server.Host}", "-p:QcowRepository=concurrency/bad", $"-p:QcowMaxConcurrentUploads={bad}");
            Assert.NotEqual(0, code);
            string error = Assert.Single(Lines(output, "error QCOW"));
            Assert.True(error.Contains($"{proj} : error QCOW0004: QcowMaxConcurrentUploads '{bad}': use a number from 1 to 64", StringComparison.Ordinal), error);
            Assert.DoesNotContain($"images -> {server.Host}/", output, StringComparison.Ordinal);
        }
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void A_bad_reference_or_an_unreachable_registry_is_one_QCOW0010_naming_it_and_an_export_is_named_as_not_pushed()
    {
        var server = registry.Server;
        string proj = Project("errors", "images.imgproj", """
            <ItemGroup>
              <QcowChain Include="images/imageC.qcow2" />
              <QcowSnapshot Include="images/imageB.qcow2" Snapshot="sn1" OutputFile="exports/imageB_sn1.qcow2" />
            </ItemGroup>
            """);

        // A repository with upper case letters: refused before anything is sent.
        var (code, output) = Publish(proj, null, $"-p:QcowRegistry={server.Host}", "-p:QcowRepository=VM/Disks");
        Assert.NotEqual(0, code);
        var error = Assert.Single(Lines(output, "error QCOW"));
        Assert.Contains($"{server.Host}/VM/Disks:1.0.0 : error QCOW0010: not a valid reference: repository 'VM/Disks' is not valid", error, StringComparison.Ordinal);
        var warning = Assert.Single(Lines(output, "warning QCOW"));
        Assert.Contains($"{_dir["errors/exports/imageB_sn1.qcow2"]} : warning QCOW0101: a single export is not a chain and is not pushed", warning, StringComparison.Ordinal);

        // A URL is not a registry.
        (code, output) = Publish(proj, null, $"-p:QcowRegistry=https://{server.Host}");
        Assert.NotEqual(0, code);
        Assert.Contains($"https://{server.Host}/images:1.0.0 : error QCOW0010: not a valid reference: 'https:' is not a host[:port]",
            Assert.Single(Lines(output, "error QCOW")), StringComparison.Ordinal);

        // Nothing listens: retried (bounded), then one error naming the reference.
        int port = RegistryServer.FreePort();
        (code, output) = Publish(proj, null, $"-p:QcowRegistry=127.0.0.1:{port}");
        Assert.NotEqual(0, code);
        error = Assert.Single(Lines(output, "error QCOW"));
        // Blobs go up three at a time, so the one named is whichever failed first: the config (by digest) or a layer.
        Assert.Matches($@"127\.0\.0\.1:{port}/images:1\.0\.0 : error QCOW0010: (sha256:[0-9a-f]{{64}}|image[A-C](_sn[01])?\.qcow2): cannot reach 127\.0\.0\.1:{port}", error);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal); // no stack trace
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Credentials_from_the_environment_answer_the_bearer_handshake_and_no_secret_is_printed_even_at_diagnostic_verbosity()
    {
        Tools.Require("docker-registry");
        using var tokens = RegistryServer.Start(RegistryAuth.Token);
        string proj = Project("token", "images.imgproj", """<ItemGroup><QcowChain Include="images/imageC.qcow2" /></ItemGroup>""");
        const string wrong = "wrong-Pa55-never-printed";

        // Anonymous and a wrong password: one error naming the reference, the password nowhere.
        var (code, output) = Publish(proj, null, $"-p:QcowRegistry={tokens.Host}");
        Assert.NotEqual(0, code);
        Assert.StartsWith($"{tokens.Host}/images:1.0.0 : error QCOW0010:", Assert.Single(Lines(output, "error QCOW")), StringComparison.Ordinal);
        (code, output) = Publish(proj, Credentials(wrong), $"-p:QcowRegistry={tokens.Host}", "-v:diag");
        Assert.NotEqual(0, code);
        Assert.StartsWith($"{tokens.Host}/images:1.0.0 : error QCOW0010:", Assert.Single(Lines(output, "error QCOW")), StringComparison.Ordinal);
        Assert.DoesNotContain(wrong, output, StringComparison.Ordinal);

        // The right one: pushed with a push token; neither the password nor a token appears at -v:diag.
        (code, output) = Publish(proj, Credentials(RegistryServer.Password), $"-p:QcowRegistry={tokens.Host}", "-v:diag");
        Assert.True(code == 0, output + tokens.Log);
        Assert.Matches($"images -> {Regex.Escape(tokens.Host)}/images@sha256:[0-9a-f]{{64}} \\(tags 1\\.0\\.0; 9 blobs uploaded", output);
        Assert.Contains(tokens.Tokens!.Issued, s => s.StartsWith("repository:images:", StringComparison.Ordinal) && s.Contains("push", StringComparison.Ordinal));
        Assert.DoesNotContain(RegistryServer.Password, output, StringComparison.Ordinal);
        Assert.DoesNotContain("eyJ", output, StringComparison.Ordinal); // no JWT

        // docker's credsStore: the helper answers an identity token, which the task trades for a token with the
        // refresh-token grant; neither it nor a token appears at -v:diag.
        string helpers = _dir["helpers"];
        FakeCredentialHelper.Answering(helpers, "vault", RegistryCredentials.IdentityTokenUser, TokenServer.IdentityToken);
        var fromHelper = new Dictionary<string, string>
        {
            ["DOCKER_CONFIG"] = FakeCredentialHelper.DockerConfig(_dir["docker-helper"], """{ "credsStore": "vault" }"""),
            ["PATH"] = FakeCredentialHelper.SearchPath(helpers),
        };
        (code, output) = Publish(proj, fromHelper, $"-p:QcowRegistry={tokens.Host}", "-v:diag");
        Assert.True(code == 0, output + tokens.Log);
        Assert.Matches($"images -> {Regex.Escape(tokens.Host)}/images@sha256:[0-9a-f]{{64}} \\(tags 1\\.0\\.0; 0 blobs uploaded", output);
        Assert.Equal(tokens.Host, FakeCredentialHelper.Asked(helpers, "vault"));
        Assert.True(tokens.Tokens.RefreshGrants > 0);
        Assert.DoesNotContain(TokenServer.IdentityToken, output, StringComparison.Ordinal);
        Assert.DoesNotContain("eyJ", output, StringComparison.Ordinal);
    }

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void The_ci_samples_push_step_runs_as_written_against_a_registry_and_the_caches_stay()
    {
        var server = registry.Server;
        Tools.Require("jq");
        string[] lines = File.ReadAllLines(Path.Combine(Repo.Root, "samples", "ci", "build-images.yml"));
        Assert.Contains(lines, l => l.Trim() == "- uses: actions/cache@v4");
        Assert.Contains(lines, l => l.Trim() == "- uses: actions/cache/save@v4");
        Assert.Contains(lines, l => l.Trim().StartsWith("packages: write", StringComparison.Ordinal));
        Assert.Equal("ghcr.io", WorkflowEnv(lines, "REGISTRY"));
        var (stepEnv, script) = Step(lines, "Push the chain to ghcr.io");
        Assert.Contains("QCOW_REGISTRY_USERNAME: ${{ github.actor }}", stepEnv);
        Assert.Contains("QCOW_REGISTRY_PASSWORD: ${{ secrets.GITHUB_TOKEN }}", stepEnv);

        // The step's script as written, in a checkout-like folder, with the registry and GitHub's variables pointed here.
        string root = _dir["ci"];
        sdk.CopySamples(Path.Combine(root, "samples"), "seed/seed.imgproj", "seed/images/imageA.qcow2", "seed/images/imageB.qcow2", "seed/images/imageC.qcow2");
        string summary = _dir["ci-summary.md"];
        var env = new Dictionary<string, string>
        {
            ["PROJECT"] = WorkflowEnv(lines, "PROJECT"),
            ["REGISTRY"] = server.Host,
            ["GITHUB_REPOSITORY"] = "Acme/Disk-Images",
            ["GITHUB_SHA"] = "0123456789abcdef0123456789abcdef01234567",
            ["GITHUB_STEP_SUMMARY"] = summary,
            ["DOCKER_CONFIG"] = _dir["no-docker-config"],
            [CredentialSource.UserNameVariable] = "",
            [CredentialSource.PasswordVariable] = "",
        };
        var (code, output) = Dotnet.Bash(env, root, script);
        Assert.True(code == 0, $"the push step exited {code}:\n{output}");
        var line = Regex.Match(File.ReadAllText(summary),
            $"^Pushed `{Regex.Escape(server.Host)}/acme/disk-images/seed@(sha256:[0-9a-f]{{64}})` \\(9 blobs uploaded, 0 already there\\)$", RegexOptions.Multiline);
        Assert.True(line.Success, File.ReadAllText(summary));
        string built = Path.Combine(root, "samples", "seed", "bin", "Release");
        Assert.Equal(line.Groups[1].Value, AssertPullsAs($"{server.Host}/acme/disk-images/seed:sha-0123456789ab", built, _dir["ci-pulled-sha"]));
        Assert.Equal(line.Groups[1].Value, AssertPullsAs($"{server.Host}/acme/disk-images/seed:latest", built, _dir["ci-pulled-latest"]));
    }

    /// <summary>A variable of the workflow's top-level <c>env:</c>.</summary>
    private static string WorkflowEnv(string[] lines, string name)
    {
        int env = Array.IndexOf(lines, "env:");
        Assert.True(env >= 0, "the workflow has no top-level env:");
        string prefix = $"  {name}: ";
        var line = lines.Skip(env + 1).TakeWhile(l => l.StartsWith("  ", StringComparison.Ordinal)).Single(l => l.StartsWith(prefix, StringComparison.Ordinal));
        return line[prefix.Length..].Trim();
    }

    /// <summary>The <c>env:</c> lines (trimmed) and the <c>run: |</c> script of the step named <paramref name="name"/>.</summary>
    private static (List<string> Env, string Script) Step(string[] lines, string name)
    {
        int start = Array.FindIndex(lines, l => l.Trim() == $"- name: {name}");
        Assert.True(start >= 0, $"no step named {name}");
        int indent = Indent(lines[start]) + 2;
        var body = lines.Skip(start + 1).TakeWhile(l => l.Trim().Length == 0 || Indent(l) >= indent).ToList();
        int run = body.FindIndex(l => l.Trim() == "run: |");
        Assert.True(run >= 0, $"step {name} has no run: | block");
        int envAt = body.FindIndex(l => l.Trim() == "env:");
        var env = envAt < 0 ? [] : body.Skip(envAt + 1).TakeWhile(l => Indent(l) > indent).Select(l => l.Trim()).ToList();
        var script = body.Skip(run + 1).TakeWhile(l => l.Trim().Length == 0 || Indent(l) > indent).Select(l => l.Length > indent + 2 ? l[(indent + 2)..] : l.Trim());
        return (env, string.Join('\n', script));
    }

    private static int Indent(string line) => line.Length - line.TrimStart(' ').Length;

    private static Dictionary<string, string> Credentials(string password) => new()
    {
        [CredentialSource.UserNameVariable] = RegistryServer.User,
        [CredentialSource.PasswordVariable] = password,
    };

    [GeneratedRegex(@"^\s*VmImages -> (?<repo>\S+)@(?<digest>sha256:[0-9a-f]{64}) \((?<rest>tags [^;]+; \d+ blobs uploaded)", RegexOptions.Multiline)]
    private static partial Regex OutputLine();

    /// <inheritdoc />
    public void Dispose() => _dir.Dispose();
}
