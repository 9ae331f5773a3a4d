using System.Text;
using System.Text.Json;

namespace Qcow.Oci;

/// <summary>A user name and password (or token) for one registry. <see cref="ToString"/> never shows the secret.</summary>
public sealed record RegistryCredentials(string UserName, string Password)
{
    /// <summary>The value of a Basic Authorization header.</summary>
    internal string BasicParameter => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{UserName}:{Password}"));

    /// <inheritdoc />
    public override string ToString() => $"{UserName}:***";
}

/// <summary>
/// Finds credentials for a registry: <c>QCOW_REGISTRY_USERNAME</c> / <c>QCOW_REGISTRY_PASSWORD</c> first, then
/// <c>auths.&lt;host&gt;</c> of docker's config.json (<c>$DOCKER_CONFIG/config.json</c>, else
/// <c>~/.docker/config.json</c>). Credentials are sent only when the registry asks for them.
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
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
            if (!doc.RootElement.TryGetProperty("auths", out var auths) || auths.ValueKind != JsonValueKind.Object) return null;
            foreach (var entry in auths.EnumerateObject())
            {
                if (!string.Equals(KeyHost(entry.Name), registry, StringComparison.OrdinalIgnoreCase)) continue;
                if (entry.Value.ValueKind != JsonValueKind.Object) continue;
                if (entry.Value.TryGetProperty("auth", out var auth) && auth.ValueKind == JsonValueKind.String && auth.GetString() is { Length: > 0 } a)
                {
                    string decoded = Encoding.UTF8.GetString(Convert.FromBase64String(a));
                    int colon = decoded.IndexOf(':', StringComparison.Ordinal);
                    // The field's content is a secret: say only which field is wrong.
                    if (colon <= 0) throw new RegistryException(path, $"auths.{entry.Name}.auth: not base64 of user:password");
                    return new RegistryCredentials(decoded[..colon], decoded[(colon + 1)..]);
                }
                if (entry.Value.TryGetProperty("username", out var u) && u.GetString() is { Length: > 0 } name
                    && entry.Value.TryGetProperty("password", out var p) && p.GetString() is { } secret)
                    return new RegistryCredentials(name, secret);
            }
            return null;
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException)
        {
            throw new RegistryException(path, "cannot read docker's config.json: not valid JSON with base64 auths");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new RegistryException(path, $"cannot read: {e.Message}");
        }
    }

    /// <summary>docker writes keys as <c>host</c>, <c>https://host</c> or <c>https://host/v1/</c>.</summary>
    private static string KeyHost(string key)
    {
        int scheme = key.IndexOf("://", StringComparison.Ordinal);
        if (scheme >= 0) key = key[(scheme + 3)..];
        int slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash >= 0 ? key[..slash] : key;
    }
}
