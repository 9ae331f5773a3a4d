using System.Text;
using System.Text.Json;

namespace Qcow.Oci;

/// <summary>
/// Finds credentials for a registry, in this order: <c>QCOW_REGISTRY_USERNAME</c> / <c>QCOW_REGISTRY_PASSWORD</c>;
/// else docker's config.json (<c>$DOCKER_CONFIG/config.json</c>, else <c>~/.docker/config.json</c>) as docker reads
/// it: the credential helper of <c>credHelpers.&lt;host&gt;</c>, else of <c>credsStore</c>, whose answer is final
/// (none means anonymous); with no helper for the registry, <c>auths.&lt;host&gt;</c>. Credentials are looked up
/// only when the registry asks for them. Every variable (PATH for the helpers too) is read through the function
/// given, never from the process directly.
/// </summary>
public sealed class CredentialSource
{
    /// <summary>Environment variable holding the user name.</summary>
    public const string UserNameVariable = "QCOW_REGISTRY_USERNAME";
    /// <summary>Environment variable holding the password or token.</summary>
    public const string PasswordVariable = "QCOW_REGISTRY_PASSWORD";

    private readonly Func<string, string?> _environment;

    /// <summary>Reads the process environment.</summary>
    public static CredentialSource Default { get; } = new(Environment.GetEnvironmentVariable);

    /// <summary>No credentials at all: anonymous access only.</summary>
    public static CredentialSource Anonymous { get; } = new(_ => null);

    /// <summary>Reads variables through <paramref name="environment"/> (tests pass a dictionary).</summary>
    public CredentialSource(Func<string, string?> environment) => _environment = environment;

    /// <summary>How long a credential helper may take to answer before it is stopped and the lookup fails.</summary>
    public TimeSpan HelperTimeout { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>The credentials for <paramref name="registry"/> (<c>host[:port]</c>), or null for anonymous.</summary>
    public RegistryCredentials? Find(string registry)
    {
        string? user = _environment(UserNameVariable);
        string? password = _environment(PasswordVariable);
        if (!string.IsNullOrEmpty(user) && password is not null) return new RegistryCredentials(user, password);
        return FromDockerConfig(registry);
    }

    private RegistryCredentials? FromDockerConfig(string registry)
    {
        string? folder = _environment("DOCKER_CONFIG");
        if (string.IsNullOrEmpty(folder))
        {
            string? home = _environment("HOME");
            if (string.IsNullOrEmpty(home)) return null;
            folder = Path.Combine(home, ".docker");
        }
        string path = Path.Combine(folder, "config.json");
        if (!File.Exists(path)) return null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException)
        {
            throw new RegistryException(path, "cannot read docker's config.json: not valid JSON");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException(path, $"cannot read: {e.Message}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new RegistryException(path, "cannot read docker's config.json: not a JSON object");
            if (Helper(doc.RootElement, registry, path) is { } helper) return helper.Get(registry);
            return FromAuths(doc.RootElement, registry, path);
        }
    }

    /// <summary>
    /// The helper docker would ask: <c>credHelpers</c>' entry for the registry, else <c>credsStore</c>. An entry
    /// whose value is empty means "no helper for this registry" (the auths), as in docker.
    /// </summary>
    private CredentialHelper? Helper(JsonElement root, string registry, string path)
    {
        if (root.TryGetProperty("credHelpers", out var helpers) && helpers.ValueKind == JsonValueKind.Object)
            foreach (var entry in helpers.EnumerateObject())
                if (string.Equals(KeyHost(entry.Name), registry, StringComparison.OrdinalIgnoreCase))
                    return Named(entry.Value, $"credHelpers.{entry.Name} in {path}", path);
        return root.TryGetProperty("credsStore", out var store) ? Named(store, $"credsStore in {path}", path) : null;
    }

    private CredentialHelper? Named(JsonElement value, string configuredBy, string path)
    {
        if (value.ValueKind != JsonValueKind.String) throw new RegistryException(path, $"{configuredBy.Split(' ')[0]}: not a string");
        string name = value.GetString()!;
        return name.Length == 0 ? null : new CredentialHelper(name, _environment("PATH"), HelperTimeout, configuredBy);
    }

    private static RegistryCredentials? FromAuths(JsonElement root, string registry, string path)
    {
        if (!root.TryGetProperty("auths", out var auths) || auths.ValueKind != JsonValueKind.Object) return null;
        foreach (var entry in auths.EnumerateObject())
        {
            if (!string.Equals(KeyHost(entry.Name), registry, StringComparison.OrdinalIgnoreCase)) continue;
            if (entry.Value.ValueKind != JsonValueKind.Object) continue;
            // `az acr login` and others store an identity token (an OAuth2 refresh token) instead of a password.
            if (Text(entry.Value, "identitytoken") is { Length: > 0 } identity)
                return new RegistryCredentials(RegistryCredentials.IdentityTokenUser, identity);
            if (Text(entry.Value, "auth") is { Length: > 0 } a)
            {
                string? decoded = null;
                try
                {
                    decoded = Encoding.UTF8.GetString(Convert.FromBase64String(a));
                }
                catch (FormatException)
                {
                }
                int colon = decoded?.IndexOf(':', StringComparison.Ordinal) ?? -1;
                // The field's content is a secret: say only which field is wrong.
                if (colon <= 0) throw new RegistryException(path, $"auths.{entry.Name}.auth: not base64 of user:password");
                return new RegistryCredentials(decoded![..colon], decoded[(colon + 1)..]);
            }
            if (Text(entry.Value, "username") is { Length: > 0 } name && Text(entry.Value, "password") is { } secret)
                return new RegistryCredentials(name, secret);
        }
        return null;
    }

    private static string? Text(JsonElement entry, string property) =>
        entry.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>docker writes keys as <c>host</c>, <c>https://host</c> or <c>https://host/v1/</c>.</summary>
    private static string KeyHost(string key)
    {
        int scheme = key.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) key = key[(scheme + 3)..];
        int slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash >= 0 ? key[..slash] : key;
    }
}
