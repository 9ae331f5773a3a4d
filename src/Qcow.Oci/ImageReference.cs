using System.Net;
using System.Text.RegularExpressions;

namespace Qcow.Oci;

/// <summary>
/// <c>host[:port]/repository[:tag][@sha256:HEX]</c>. The host part is required (there is no default registry), so a
/// reference is never sent somewhere the user did not name.
/// </summary>
public sealed partial record ImageReference(string Registry, string Repository, string? Tag, string? Digest)
{
    /// <summary>The host name without port or brackets.</summary>
    public string Host => HostOf(Registry);

    /// <summary>What the manifest is fetched by: the digest when given, else the tag, else <c>latest</c>.</summary>
    public string Reference => Digest ?? Tag ?? "latest";

    /// <summary>Parses a reference; throws <see cref="RegistryException"/> saying which part is wrong.</summary>
    public static ImageReference Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string rest = text;
        string? digest = null;
        int at = rest.IndexOf('@', StringComparison.Ordinal);
        if (at >= 0)
        {
            digest = rest[(at + 1)..];
            rest = rest[..at];
            if (!Digests.IsSha256(digest)) throw Bad(text, $"digest '{digest}' is not sha256: followed by 64 lower-case hex digits");
        }
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0) throw Bad(text, "needs a registry host: host[:port]/repository[:tag]");
        string registry = rest[..slash];
        string path = rest[(slash + 1)..];
        if (!IsRegistry(registry)) throw Bad(text, $"'{registry}' is not a host[:port]");
        string? tag = null;
        int colon = path.LastIndexOf(':');
        if (colon >= 0)
        {
            tag = path[(colon + 1)..];
            path = path[..colon];
            if (!TagPattern().IsMatch(tag)) throw Bad(text, $"tag '{tag}' is not valid ([A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})");
        }
        if (path.Length == 0 || path.Length > 255 || !RepositoryPattern().IsMatch(path))
            throw Bad(text, $"repository '{path}' is not valid (lower-case path components of a-z, 0-9 and . _ - separators)");
        return new ImageReference(registry, path, tag, digest);
    }

    /// <summary>The same repository at another tag.</summary>
    public ImageReference WithTag(string tag) => this with { Tag = tag, Digest = null };

    /// <summary>The same repository at a digest.</summary>
    public ImageReference WithDigest(string digest) => this with { Tag = null, Digest = digest };

    /// <inheritdoc />
    public override string ToString() =>
        $"{Registry}/{Repository}{(Tag is null ? "" : ":" + Tag)}{(Digest is null ? "" : "@" + Digest)}";

    /// <summary>True for localhost, 127.0.0.0/8 and ::1, which are reached over plain HTTP, as docker does.</summary>
    public static bool IsLoopback(string registry)
    {
        string host = HostOf(registry);
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return true;
        return IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip);
    }

    /// <summary>The host of <c>host[:port]</c> or <c>[v6]:port</c>, without brackets.</summary>
    public static string HostOf(string registry)
    {
        if (registry.StartsWith('['))
        {
            int end = registry.IndexOf(']', StringComparison.Ordinal);
            return end > 0 ? registry[1..end] : registry;
        }
        int colon = registry.LastIndexOf(':');
        return colon >= 0 ? registry[..colon] : registry;
    }

    private static bool IsRegistry(string registry)
    {
        string host = HostOf(registry);
        string port = registry.StartsWith('[') ? registry[(registry.IndexOf(']', StringComparison.Ordinal) + 1)..] : registry[host.Length..];
        if (port.Length > 0 && (!port.StartsWith(':') || !int.TryParse(port[1..], out int p) || p is < 1 or > 65535)) return false;
        if (registry.StartsWith('[')) return IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        return HostPattern().IsMatch(host);
    }

    private static RegistryException Bad(string text, string why) => new(text, $"not a valid reference: {why}");

    [GeneratedRegex("^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")]
    private static partial Regex HostPattern();

    [GeneratedRegex("^[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*$")]
    private static partial Regex RepositoryPattern();

    [GeneratedRegex("^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")]
    private static partial Regex TagPattern();
}
