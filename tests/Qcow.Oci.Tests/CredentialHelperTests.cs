using Qcow.Testing;
using Qcow.Testing.Registry;

namespace Qcow.Oci.Tests;

/// <summary>
/// docker's credential helpers (<c>credHelpers</c>, <c>credsStore</c>), with fake helpers (bash scripts) on a PATH
/// handed to the library through its environment function, or to the CLI's process.
/// </summary>
public sealed class CredentialHelperTests
{
    private const string HelperSecret = "helper-Secret-93a1-not-for-logs";

    /// <summary>A source that sees only DOCKER_CONFIG and a PATH starting with the helpers' folder.</summary>
    private static CredentialSource Source(string dockerConfig, string helpers, TimeSpan? timeout = null) =>
        new(n => n switch { "DOCKER_CONFIG" => dockerConfig, "PATH" => FakeCredentialHelper.SearchPath(helpers), _ => null })
        {
            HelperTimeout = timeout ?? TimeSpan.FromMinutes(1),
        };

    [Fact]
    public void CredHelpers_win_over_credsStore_which_wins_over_auths_and_each_outcome_is_clear()
    {
        using var dir = new TempDir();
        string helpers = dir["bin"];
        FakeCredentialHelper.Answering(helpers, "store", "store-user", "store-secret");
        FakeCredentialHelper.Answering(helpers, "pass", "pass-user", HelperSecret);
        FakeCredentialHelper.Answering(helpers, "acr", RegistryCredentials.IdentityTokenUser, "identity-xyz");
        FakeCredentialHelper.NotFound(helpers, "empty");
        FakeCredentialHelper.Failing(helpers, "locked", "error getting credentials: the keychain is locked", 2);
        FakeCredentialHelper.Hanging(helpers, "stuck");
        string config = FakeCredentialHelper.DockerConfig(dir["docker"], """
            { "auths": { "reg.example:5000": { "auth": "dXNlcjpwYTpzcw==" }, "plain.example": { "auth": "dXNlcjpwYTpzcw==" },
                         "missing.example": { "auth": "dXNlcjpwYTpzcw==" } },
              "credsStore": "store",
              "credHelpers": { "reg.example:5000": "pass", "acr.example": "acr", "none.example": "empty", "locked.example": "locked",
                               "stuck.example": "stuck", "plain.example": "", "missing.example": "not-installed" } }
            """);
        // Helpers that answer get the library's default bound (a hang detector only): how long bash takes to start on a
        // loaded machine decides nothing here.
        var source = Source(config, helpers);

        // credHelpers for the host beats credsStore and the auths entry; the helper is asked for host[:port] on stdin.
        var found = source.Find("reg.example:5000");
        Assert.Equal(new RegistryCredentials("pass-user", HelperSecret), found);
        Assert.Equal("reg.example:5000", FakeCredentialHelper.Asked(helpers, "pass"));
        Assert.Equal("pass-user:***", found!.ToString());
        // No entry in credHelpers: credsStore. An empty entry: no helper, the auths.
        Assert.Equal(new RegistryCredentials("store-user", "store-secret"), source.Find("other.example"));
        Assert.Equal("other.example", FakeCredentialHelper.Asked(helpers, "store"));
        Assert.Equal(new RegistryCredentials("user", "pa:ss"), source.Find("plain.example"));
        // "<token>" marks an identity token.
        Assert.True(source.Find("acr.example")!.IsIdentityToken);
        // Not found: anonymous, as docker goes on; the auths are not consulted once a helper is configured.
        Assert.Null(source.Find("none.example"));
        Assert.Equal("none.example", FakeCredentialHelper.Asked(helpers, "empty"));

        // A helper that fails, is not installed, or never answers: one error naming the helper and what configured it.
        var locked = Assert.Throws<RegistryException>(() => source.Find("locked.example"));
        Assert.Equal("docker-credential-locked", locked.FilePath);
        Assert.Contains("exited 2: error getting credentials: the keychain is locked", locked.Message);
        Assert.Contains($"credHelpers.locked.example in {Path.Combine(config, "config.json")}", locked.Message);
        var missing = Assert.Throws<RegistryException>(() => source.Find("missing.example"));
        Assert.Equal("docker-credential-not-installed", missing.FilePath);
        Assert.Contains("not on PATH", missing.Message);
        // The hang detector: a helper that never answers (it sleeps) is stopped once the bound is reached. A bound of
        // zero reaches it at once, so what is tested is the stop and the error, not a race with the clock.
        var stuck = Assert.Throws<RegistryException>(() => Source(config, helpers, TimeSpan.Zero).Find("stuck.example"));
        Assert.Equal("docker-credential-stuck", stuck.FilePath);
        Assert.Contains("no answer for stuck.example within 0 s", stuck.Message);

        // An answer that is not the helper protocol: described, never echoed (it may hold the secret).
        FakeCredentialHelper.Failing(helpers, "pass", HelperSecret, 0);
        var garbled = Assert.Throws<RegistryException>(() => source.Find("reg.example:5000"));
        Assert.Contains("not JSON", garbled.Message);
        Assert.DoesNotContain(HelperSecret, garbled.ToString());

        // The environment variables still come first.
        var withVariables = new CredentialSource(n => n switch
        {
            "DOCKER_CONFIG" => config, "PATH" => FakeCredentialHelper.SearchPath(helpers),
            CredentialSource.UserNameVariable => "env-user", CredentialSource.PasswordVariable => "env-secret", _ => null,
        });
        Assert.Equal(new RegistryCredentials("env-user", "env-secret"), withVariables.Find("reg.example:5000"));
    }

    [SkippableFact]
    public async Task Basic_auth_over_tls_with_credentials_only_from_a_helper_and_not_found_or_failing_helpers()
    {
        Tools.Require("docker-registry", "htpasswd");
        using var registry = RegistryServer.Start(RegistryAuth.BasicOverTls);
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 21, 20_000, 3_000);
        var reference = registry.Ref("helper/chain:v1");
        string caFile = registry.Pki!.CaCertificatePath;
        string helpers = dir["bin"];
        FakeCredentialHelper.Answering(helpers, "good", RegistryServer.User, RegistryServer.Password);
        FakeCredentialHelper.NotFound(helpers, "empty");
        FakeCredentialHelper.Failing(helpers, "broken", "error getting credentials: dbus is not running", 1);
        string Config(string name, string helper) => FakeCredentialHelper.DockerConfig(dir[name], $$"""{ "credHelpers": { "{{registry.Host}}": "{{helper}}" } }""");

        var pushed = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference },
            registry.Options(Source(Config("good", "good"), helpers), caFile: caFile));
        Assert.Equal(4, pushed.BlobsUploaded);
        Assert.Equal(registry.Host, FakeCredentialHelper.Asked(helpers, "good"));
        var pulled = await ChainPull.RunAsync(new PullRequest { Reference = reference, Folder = dir["pulled"] },
            registry.Options(Source(Config("good-pull", "good"), helpers), caFile: caFile));
        Assert.Equal(pushed.Digest, pulled.Digest);
        Chains.AssertSameFiles(chain, dir["pulled"]);

        // Not found: on anonymously, which this registry refuses with a 401.
        var anonymous = await Assert.ThrowsAsync<RegistryException>(() => ChainPull.RunAsync(
            new PullRequest { Reference = reference, Folder = dir["anonymous"] }, registry.Options(Source(Config("empty", "empty"), helpers), caFile: caFile)));
        Assert.Contains("401", anonymous.Message);
        Assert.Equal(registry.Host, FakeCredentialHelper.Asked(helpers, "empty"));

        // A failing helper: its error, naming it, and nothing written.
        var failed = await Assert.ThrowsAsync<RegistryException>(() => ChainPull.RunAsync(
            new PullRequest { Reference = reference, Folder = dir["failed"] }, registry.Options(Source(Config("broken", "broken"), helpers), caFile: caFile)));
        Assert.Equal("docker-credential-broken", failed.FilePath);
        Assert.Contains("exited 1: error getting credentials: dbus is not running", failed.Message);
        Assert.False(Directory.Exists(dir["failed"]) && Directory.EnumerateFileSystemEntries(dir["failed"]).Any());
        foreach (var e in new[] { anonymous, failed }) Assert.DoesNotContain(RegistryServer.Password, e.ToString());
    }

    [SkippableFact]
    public void An_identity_token_from_a_helper_is_a_refresh_token_for_the_token_server_through_the_cli_and_never_printed()
    {
        Tools.Require("docker-registry");
        using var registry = RegistryServer.Start(RegistryAuth.Token);
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 22, 30_000, 4_000);
        string helpers = dir["bin"];
        FakeCredentialHelper.Answering(helpers, "idt", RegistryCredentials.IdentityTokenUser, TokenServer.IdentityToken);
        FakeCredentialHelper.Answering(helpers, "basic", RegistryServer.User, RegistryServer.Password);
        var env = new Dictionary<string, string?>
        {
            ["DOCKER_CONFIG"] = FakeCredentialHelper.DockerConfig(dir["docker"], $$"""{ "credsStore": "idt" }"""),
            ["PATH"] = FakeCredentialHelper.SearchPath(helpers),
            [CredentialSource.UserNameVariable] = "",
            [CredentialSource.PasswordVariable] = "",
        };

        var push = QcowProcess.RunWith(env, "push", "-p", chain, $"{registry.Host}/idt/chain:v1");
        Assert.True(push.ExitCode == 0, push + registry.Log);
        Assert.Equal(registry.Host, FakeCredentialHelper.Asked(helpers, "idt"));
        Assert.True(registry.Tokens!.RefreshGrants > 0);
        var pull = QcowProcess.RunWith(env, "pull", $"{registry.Host}/idt/chain:v1", dir["pulled"]);
        Assert.True(pull.ExitCode == 0, pull + registry.Log);
        Chains.AssertSameFiles(chain, dir["pulled"]);

        // A user name and password from a helper answer the same handshake with Basic on the realm.
        env["DOCKER_CONFIG"] = FakeCredentialHelper.DockerConfig(dir["docker-basic"], $$"""{ "credHelpers": { "{{registry.Host}}": "basic" } }""");
        int grants = registry.Tokens.RefreshGrants;
        var basic = QcowProcess.RunWith(env, "pull", $"{registry.Host}/idt/chain:v1", dir["pulled-basic"]);
        Assert.True(basic.ExitCode == 0, basic + registry.Log);
        Assert.Equal(grants, registry.Tokens.RefreshGrants);
        Chains.AssertSameFiles(chain, dir["pulled-basic"]);

        foreach (var output in new[] { push, pull, basic })
        {
            Assert.DoesNotContain(TokenServer.IdentityToken, output.StdOut + output.StdErr);
            Assert.DoesNotContain(RegistryServer.Password, output.StdOut + output.StdErr);
            Assert.DoesNotContain("eyJ", output.StdOut + output.StdErr);
        }
    }
}
