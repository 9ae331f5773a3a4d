using Qcow.Testing;
using Qcow.Oci.Tests.Support;
using Qcow.Testing.Registry;

namespace Qcow.Oci.Tests;

/// <summary>
/// Authentication against real registries: htpasswd Basic over TLS with a test CA, and docker-registry's token auth
/// with an in-process token server. Secrets never appear in errors or output.
/// </summary>
public sealed class AuthTests
{
    [SkippableFact]
    public async Task Basic_auth_over_tls_with_a_test_ca_from_the_environment_and_from_docker_config()
    {
        Tools.Require("docker-registry", "htpasswd");
        using var registry = RegistryServer.Start(RegistryAuth.BasicOverTls);
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 11, 20_000, 3_000);
        var reference = registry.Ref("secure/chain:v1");
        var env = new Dictionary<string, string?>
        {
            [CredentialSource.UserNameVariable] = RegistryServer.User,
            [CredentialSource.PasswordVariable] = RegistryServer.Password,
        };
        var fromEnvironment = new CredentialSource(n => env.GetValueOrDefault(n));
        string caFile = registry.Pki!.CaCertificatePath;

        // A registry that is not on a loopback name is reached over HTTPS; without the CA its certificate is not trusted.
        var untrusted = await Assert.ThrowsAsync<RegistryException>(() =>
            ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference }, registry.Options(fromEnvironment)));
        Assert.Contains("TLS", untrusted.Message);
        Assert.Contains("--ca-file", untrusted.Message);

        var anonymous = await Assert.ThrowsAsync<RegistryException>(() =>
            ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference }, registry.Options(caFile: caFile)));
        Assert.Contains("401", anonymous.Message);
        Assert.Contains(CredentialSource.UserNameVariable, anonymous.Message);

        var wrong = new CredentialSource(n => n == CredentialSource.UserNameVariable ? RegistryServer.User : n == CredentialSource.PasswordVariable ? "wrong-password-xyz" : null);
        var refused = await Assert.ThrowsAsync<RegistryException>(() =>
            ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference }, registry.Options(wrong, caFile: caFile)));
        Assert.Contains("401", refused.Message);
        Assert.DoesNotContain("wrong-password-xyz", refused.ToString());

        var pushed = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference },
            registry.Options(fromEnvironment, caFile: caFile));
        Assert.Equal(4, pushed.BlobsUploaded);

        // docker's config.json, found through DOCKER_CONFIG, as `docker login` writes it.
        string dockerConfig = dir["docker"];
        Directory.CreateDirectory(dockerConfig);
        string auth = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{RegistryServer.User}:{RegistryServer.Password}"));
        File.WriteAllText(Path.Combine(dockerConfig, "config.json"),
            $$"""{ "auths": { "other.example:5000": { "auth": "b3RoZXI6b3RoZXI=" }, "https://{{registry.Host}}": { "auth": "{{auth}}" } } }""");
        var fromDocker = new CredentialSource(n => n == "DOCKER_CONFIG" ? dockerConfig : null);
        var pulled = await ChainPull.RunAsync(new PullRequest { Reference = reference.WithDigest(pushed.Digest), Folder = dir["pulled"] },
            registry.Options(fromDocker, caFile: caFile));
        Assert.Equal(pushed.Digest, pulled.Digest);
        Chains.AssertSameFiles(chain, dir["pulled"]);
    }

    [SkippableFact]
    public void Bearer_token_handshake_against_the_real_registry_through_the_cli_never_prints_the_secret()
    {
        Tools.Require("docker-registry");
        using var registry = RegistryServer.Start(RegistryAuth.Token);
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 12, 30_000, 4_000);
        var env = new Dictionary<string, string?>
        {
            [CredentialSource.UserNameVariable] = RegistryServer.User,
            [CredentialSource.PasswordVariable] = RegistryServer.Password,
            ["DOCKER_CONFIG"] = dir["no-docker-config"],
        };

        var anonymous = QcowProcess.RunWith(new Dictionary<string, string?> { ["DOCKER_CONFIG"] = dir["none"], ["HOME"] = dir["none"] },
            "push", chain, $"{registry.Host}/tok/chain:v1");
        Assert.Equal(1, anonymous.ExitCode);
        Assert.Contains("token request to", anonymous.StdErr);
        Assert.Contains("no credentials", anonymous.StdErr);

        var push = QcowProcess.RunWith(env, "push", "-p", "--chunk-size", "8k", chain, $"{registry.Host}/tok/chain:v1");
        Assert.True(push.ExitCode == 0, push + registry.Log);
        Assert.Contains($"pushing 4 blobs to {registry.Host}/tok/chain:v1", push.StdErr); // -p shows progress, one line for all blobs
        var pull = QcowProcess.RunWith(env, "pull", $"{registry.Host}/tok/chain:v1", dir["pulled"]);
        Assert.True(pull.ExitCode == 0, pull + registry.Log);
        Chains.AssertSameFiles(chain, dir["pulled"]);

        // The registry asked for pull, then pull+push on the repository; each was a token from the realm. The registry
        // lists the actions of a scope in no fixed order, so compare them as sets.
        static string Normal(string scope)
        {
            int colon = scope.LastIndexOf(':');
            return scope[..(colon + 1)] + string.Join(',', scope[(colon + 1)..].Split(',').Order(StringComparer.Ordinal));
        }
        var issued = registry.Tokens!.Issued.Select(Normal).ToList();
        Assert.Contains("repository:tok/chain:pull,push", issued);
        Assert.Contains("repository:tok/chain:pull", issued);
        foreach (var output in new[] { anonymous, push, pull })
        {
            Assert.DoesNotContain(RegistryServer.Password, output.StdOut + output.StdErr);
            Assert.DoesNotContain("eyJ", output.StdOut + output.StdErr); // no JWT either
        }
    }
}
