using Qcow.Engine.Operations;

namespace Qcow.Oci;

/// <summary>How to reach a registry: transport, trust, credentials, retries, chunking and progress.</summary>
public sealed record RegistryOptions
{
    /// <summary>Registries (<c>host[:port]</c>) reached over plain HTTP although not on a loopback address.</summary>
    public IReadOnlyList<string> InsecureRegistries { get; init; } = [];

    /// <summary>PEM file of extra CA certificates trusted for HTTPS besides the system's trust store.</summary>
    public string? CaFile { get; init; }

    /// <summary>Where credentials come from; by default the environment and docker's config.json.</summary>
    public CredentialSource Credentials { get; init; } = CredentialSource.Default;

    /// <summary>Blobs larger than this upload in chunks of this size (PATCH with Content-Range).</summary>
    public long ChunkSize { get; init; } = 64L << 20;

    /// <summary>
    /// Blobs of a push uploaded at the same time (1 to <see cref="MostConcurrentUploads"/>); the manifest is put after
    /// all of them.
    /// </summary>
    public int MaxConcurrentUploads { get; init; } = 3;

    /// <summary>The most <see cref="MaxConcurrentUploads"/> may be: more connections than that only load the registry.</summary>
    public const int MostConcurrentUploads = 64;

    /// <summary>Transient failures (5xx, 429, connection errors) retried per request or blob before giving up.</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>The first retry's wait; each further one doubles it, up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>The longest wait between retries.</summary>
    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How a wait is made (tests record the waits instead of sleeping).</summary>
    public Func<TimeSpan, CancellationToken, Task> Delay { get; init; } = Task.Delay;

    /// <summary>Time allowed for one request (for a download: until its headers arrive).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>A download that receives nothing for this long fails (and is retried like a reset connection).</summary>
    public TimeSpan StallTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Progress per file (Stage = file name), or null.</summary>
    public Action<ProgressInfo>? Progress { get; init; }

    /// <summary>Wraps the HTTP handler (tests put fault injection here); null for none.</summary>
    public Func<HttpMessageHandler, HttpMessageHandler>? WrapHandler { get; init; }

    /// <summary>True when <paramref name="registry"/> is reached over plain HTTP.</summary>
    public bool IsPlainHttp(string registry) =>
        ImageReference.IsLoopback(registry) || InsecureRegistries.Any(r => string.Equals(r, registry, StringComparison.OrdinalIgnoreCase));
}
