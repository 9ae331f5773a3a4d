using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Oci.Tests.Support;
using Qcow.Testing.Registry;

namespace Qcow.Oci.Tests;

/// <summary>References, challenges, credentials and chain.json: the parts that need no registry.</summary>
public sealed class ParsingTests
{
    [Theory]
    [InlineData("localhost:5000/vm/images:v1", "localhost:5000", "vm/images", "v1", null)]
    [InlineData("ghcr.io/org/team/vm", "ghcr.io", "org/team/vm", null, null)]
    [InlineData("127.0.0.1:5000/a_b-c.d/e__f:1.0-rc_2", "127.0.0.1:5000", "a_b-c.d/e__f", "1.0-rc_2", null)]
    [InlineData("[::1]:5000/vm:latest", "[::1]:5000", "vm", "latest", null)]
    [InlineData("registry.example.com/vm@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "registry.example.com", "vm", null,
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")]
    [InlineData("r.example:443/vm:v2@sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "r.example:443", "vm", "v2",
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a")]
    public void References_parse_into_registry_repository_tag_and_digest(string text, string registry, string repository, string? tag, string? digest)
    {
        var r = ImageReference.Parse(text);
        Assert.Equal((registry, repository, tag, digest), (r.Registry, r.Repository, r.Tag, r.Digest));
        Assert.Equal(text, r.ToString());
    }

    [Theory]
    [InlineData("vm:v1", "needs a registry host")]
    [InlineData("/vm:v1", "needs a registry host")]
    [InlineData("host:99999/vm", "is not a host[:port]")]
    [InlineData("ho_st/vm", "is not a host[:port]")]
    [InlineData("host/VM", "repository 'VM' is not valid")]
    [InlineData("host/vm/../etc", "repository 'vm/../etc' is not valid")]
    [InlineData("host/", "repository '' is not valid")]
    [InlineData("host/vm:", "tag '' is not valid")]
    [InlineData("host/vm:-x", "tag '-x' is not valid")]
    [InlineData("host/vm@sha256:abc", "digest 'sha256:abc' is not sha256:")]
    [InlineData("host/vm@md5:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", "is not sha256:")]
    public void Bad_references_are_one_clear_error_naming_the_part(string text, string why)
    {
        var e = Assert.Throws<RegistryException>(() => ImageReference.Parse(text));
        Assert.Equal(text, e.FilePath);
        Assert.Contains(why, e.Message);
    }

    [Theory]
    [InlineData("localhost:5000", true)]
    [InlineData("localhost", true)]
    [InlineData("127.0.0.1:5000", true)]
    [InlineData("127.45.0.9", true)]
    [InlineData("[::1]:5000", true)]
    [InlineData("10.0.0.1:5000", false)]
    [InlineData("ghcr.io", false)]
    [InlineData("localhost.example.com", false)]
    public void Loopback_registries_are_plain_http_others_https_unless_listed_insecure(string registry, bool plain)
    {
        Assert.Equal(plain, new RegistryOptions().IsPlainHttp(registry));
        Assert.True(new RegistryOptions { InsecureRegistries = [registry] }.IsPlainHttp(registry));
    }

    [Fact]
    public void Www_authenticate_challenges_parse_as_the_registries_send_them()
    {
        var c = AuthChallenge.Parse("Bearer realm=\"https://auth.example.com/token\",service=\"registry.example.com\",scope=\"repository:a/b:pull,push repository:c:pull\"");
        var bearer = Assert.Single(c);
        Assert.Equal("Bearer", bearer.Scheme);
        Assert.Equal("https://auth.example.com/token", bearer["realm"]);
        Assert.Equal("registry.example.com", bearer["service"]);
        Assert.Equal("repository:a/b:pull,push repository:c:pull", bearer["scope"]);

        var two = AuthChallenge.Parse("Basic realm=\"Registry Realm\", Bearer realm=\"x\",error=\"invalid_token\"");
        Assert.Equal(new[] { "Basic", "Bearer" }, two.Select(x => x.Scheme));
        Assert.Equal("Registry Realm", two[0]["realm"]);
        Assert.Equal("invalid_token", two[1]["error"]);
        Assert.Equal("a\"b", AuthChallenge.Parse("Basic realm=\"a\\\"b\"")[0]["realm"]);
    }

    [Fact]
    public void Credentials_come_from_the_environment_first_then_docker_config_matching_the_host()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["config.json"], """
            { "auths": { "https://index.docker.io/v1/": { "auth": "ZG9jazpodWI=" },
                         "reg.example:5000": { "auth": "dXNlcjpwYTpzcw==" },
                         "other.example": { "username": "u2", "password": "p2" } } }
            """);
        var vars = new Dictionary<string, string?> { ["DOCKER_CONFIG"] = dir.Path };
        var source = new CredentialSource(n => vars.GetValueOrDefault(n));
        Assert.Equal(new RegistryCredentials("user", "pa:ss"), source.Find("reg.example:5000"));
        Assert.Equal(new RegistryCredentials("u2", "p2"), source.Find("other.example"));
        Assert.Equal(new RegistryCredentials("dock", "hub"), source.Find("index.docker.io"));
        Assert.Null(source.Find("reg.example"));
        Assert.Equal("user:***", source.Find("reg.example:5000")!.ToString());

        vars[CredentialSource.UserNameVariable] = "env-user";
        vars[CredentialSource.PasswordVariable] = "env-secret";
        Assert.Equal(new RegistryCredentials("env-user", "env-secret"), source.Find("reg.example:5000"));

        File.WriteAllText(dir["config.json"], """{ "auths": { "reg.example:5000": { "auth": "bm8tY29sb24=" } } }""");
        vars.Remove(CredentialSource.UserNameVariable);
        var e = Assert.Throws<RegistryException>(() => source.Find("reg.example:5000"));
        Assert.Contains("auths.reg.example:5000.auth", e.Message);
        Assert.DoesNotContain("no-colon", e.Message);
    }

    [Fact]
    public void ChainManifest_reads_what_linearize_writes_and_writes_the_same_bytes()
    {
        using var dir = new TempDir();
        string chain = Chains.Seed(dir["chain"]);
        string path = Path.Combine(chain, "chain.json");
        var manifest = ChainManifest.Read(path);
        Assert.Equal(7, manifest.Layers.Count);
        Assert.Equal("imageA_sn0.qcow2", manifest.Layers[0].File);
        Assert.Null(manifest.Layers[0].Backing);
        Assert.Equal(manifest.Layers[5].File, manifest.Layers[6].Backing);
        foreach (var l in manifest.Layers)
            Assert.Equal("sha256:" + l.Sha256, Digests.OfFile(Path.Combine(chain, l.File)).Digest);
        Assert.Equal(File.ReadAllBytes(path), manifest.ToJson());
        manifest.Write(dir["copy.json"]);
        Assert.Equal(File.ReadAllBytes(path), File.ReadAllBytes(dir["copy.json"]));
    }

    [Theory]
    [InlineData("""{"format":"qcow-chain/2","layers":[]}""", "format")]
    [InlineData("""{"layers":[]}""", "format")]
    [InlineData("""{"format":"qcow-chain/1"}""", "layers")]
    [InlineData("""{"format":"qcow-chain/1","layers":[]}""", "layers")]
    [InlineData("""{"format":"qcow-chain/1","layers":[{"file":"../a.qcow2","sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}]}""", "layers[0].file")]
    [InlineData("""{"format":"qcow-chain/1","layers":[{"file":"a.qcow2","sha256":"44136FA355B3678A1146AD16F7E8649E94FB4FC21FE77E8310C060F61CAAFF8A"}]}""", "layers[0].sha256")]
    [InlineData("""{"format":"qcow-chain/1","layers":[{"file":"a.qcow2","sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},{"file":"a.qcow2","sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}]}""", "layers[1].file")]
    [InlineData("""{"format":"qcow-chain/1","layers":[{"file":"a.qcow2","sha256":"44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","virtualSize":-1}]}""", "layers[0].virtualSize")]
    [InlineData("""{"format":"qcow-chain/1","layers":[{"file":7,"sha256":"x"}]}""", "layers[0].file")]
    [InlineData("""not json""", "chain.json")]
    public void ChainManifest_refuses_bad_files_naming_the_field(string json, string field)
    {
        var e = Assert.Throws<QcowFormatException>(() => ChainManifest.Parse(System.Text.Encoding.UTF8.GetBytes(json), "/x/chain.json"));
        Assert.Equal(field, e.Field);
        Assert.Equal("/x/chain.json", e.FilePath);
    }
}
