using System.Net;

namespace Qcow.Oci;

/// <summary>What happened to one blob of a push.</summary>
internal enum BlobOutcome
{
    /// <summary>The registry had it already (HEAD found it).</summary>
    Skipped,
    /// <summary>Mounted from another repository of the same registry, without uploading.</summary>
    Mounted,
    /// <summary>Uploaded.</summary>
    Uploaded,
}

/// <summary>
/// Pushes one blob: HEAD first, then a cross-repository mount if a source repository is named, else an upload, in
/// one PUT when it fits a chunk and in PATCH chunks (Content-Range) otherwise. A transient failure in the middle of a
/// chunked upload asks the registry how much it has and resumes from there; other transient failures start a new
/// upload. All retries share one bound per blob.
/// </summary>
internal sealed class BlobUploader(RegistryClient client, string repository)
{
    private readonly RegistryOptions _options = client.Options;

    /// <summary>Pushes <paramref name="blob"/>, reporting its bytes sent so far to <paramref name="sent"/>.</summary>
    public async Task<BlobOutcome> PushAsync(BlobSource blob, IReadOnlyList<string> mountFrom, Action<long>? sent, CancellationToken cancel)
    {
        if (await ExistsAsync(blob, cancel).ConfigureAwait(false)) return BlobOutcome.Skipped;
        Uri? location = null;
        var sources = mountFrom.Where(f => f != repository).Distinct(StringComparer.Ordinal).ToList();
        for (int i = 0; i < sources.Count; i++)
        {
            var uri = client.V2(repository, $"blobs/uploads/?mount={Uri.EscapeDataString(blob.Descriptor.Digest)}&from={Uri.EscapeDataString(sources[i])}");
            using var response = await client.SendAsync(() => new HttpRequestMessage(HttpMethod.Post, uri), blob.Name, cancel).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.Created) return BlobOutcome.Mounted;
            await RegistryClient.EnsureAsync(response, blob.Name, $"mounting from {sources[i]}", HttpStatusCode.Accepted).ConfigureAwait(false);
            // Not there: the registry opened an ordinary upload instead. The last one is used; others are cancelled.
            location = client.Resolve(response.Headers.Location, blob.Name);
            if (i < sources.Count - 1)
            {
                var abandoned = location;
                using var cancelled = await client.SendAsync(() => new HttpRequestMessage(HttpMethod.Delete, abandoned), blob.Name, cancel).ConfigureAwait(false);
                location = null;
            }
        }
        await UploadAsync(blob, location, sent, cancel).ConfigureAwait(false);
        return BlobOutcome.Uploaded;
    }

    private async Task UploadAsync(BlobSource blob, Uri? location, Action<long>? sent, CancellationToken cancel)
    {
        long size = blob.Descriptor.Size;
        bool chunked = size > _options.ChunkSize;
        long offset = 0;
        int failures = 0;
        while (true)
        {
            try
            {
                location ??= await StartAsync(blob, cancel).ConfigureAwait(false);
                if (!chunked)
                {
                    await FinishAsync(blob, location, withBody: true, sent, cancel).ConfigureAwait(false);
                    return;
                }
                while (offset < size)
                {
                    long length = Math.Min(_options.ChunkSize, size - offset);
                    long start = offset;
                    using var response = await client.SendAsync(() =>
                    {
                        var content = blob.Content(start, length, Offset(sent, start));
                        content.Headers.ContentType = new("application/octet-stream");
                        content.Headers.TryAddWithoutValidation("Content-Range", $"{start}-{start + length - 1}");
                        return new HttpRequestMessage(HttpMethod.Patch, location) { Content = content };
                    }, blob.Name, cancel, retry: false).ConfigureAwait(false);
                    if (RetryPolicy.IsTransient(response.StatusCode)) throw new TransientFailure($"PATCH {(int)response.StatusCode}");
                    await RegistryClient.EnsureAsync(response, blob.Name, "uploading a chunk", HttpStatusCode.Accepted, HttpStatusCode.NoContent).ConfigureAwait(false);
                    location = client.Resolve(response.Headers.Location, blob.Name);
                    offset += length;
                }
                await FinishAsync(blob, location, withBody: false, null, cancel).ConfigureAwait(false);
                return;
            }
            catch (TransientFailure e)
            {
                if (!client.Retry.CanRetry(++failures))
                    throw new RegistryException(blob.Name, $"upload to {client.Registry}/{repository} failed {failures} times: {e.Message}");
                await client.Retry.WaitAsync(failures, cancel).ConfigureAwait(false);
                // The failed request may have gone through before the answer was lost.
                if (await ExistsAsync(blob, cancel).ConfigureAwait(false)) return;
                (location, offset) = chunked && location is not null ? await ResumePointAsync(blob, location, cancel).ConfigureAwait(false) : (null, 0);
            }
        }
    }

    /// <summary>Where an interrupted chunked upload stands: its Location and the next offset, or (null, 0) to start over.</summary>
    private async Task<(Uri?, long)> ResumePointAsync(BlobSource blob, Uri location, CancellationToken cancel)
    {
        using var response = await client.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, location), blob.Name, cancel).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.NoContent) return (null, 0);
        var next = response.Headers.Location is { } l ? client.Resolve(l, blob.Name) : location;
        // "0-N" is the last byte received; distribution sends "0-0" for an empty upload too, and chunks are never 1 byte.
        if (!response.Headers.TryGetValues("Range", out var ranges)) return (next, 0);
        string range = ranges.First();
        int dash = range.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0 || !long.TryParse(range[(dash + 1)..], out long last) || last < 0 || last >= blob.Descriptor.Size) return (null, 0);
        long received = last == 0 ? 0 : last + 1;
        // Resume only on a chunk boundary we sent (or after the last chunk); anything else is safest restarted.
        return received % _options.ChunkSize == 0 || received == blob.Descriptor.Size ? (next, received) : (null, 0);
    }

    private async Task<Uri> StartAsync(BlobSource blob, CancellationToken cancel)
    {
        var uri = client.V2(repository, "blobs/uploads/");
        using var response = await client.SendAsync(() => new HttpRequestMessage(HttpMethod.Post, uri), blob.Name, cancel).ConfigureAwait(false);
        await RegistryClient.EnsureAsync(response, blob.Name, $"starting an upload to {client.Registry}/{repository}", HttpStatusCode.Accepted).ConfigureAwait(false);
        return client.Resolve(response.Headers.Location, blob.Name);
    }

    /// <summary>PUT …?digest= with the last bytes (or none): the registry checks the digest and commits the blob.</summary>
    private async Task FinishAsync(BlobSource blob, Uri location, bool withBody, Action<long>? sent, CancellationToken cancel)
    {
        var uri = new UriBuilder(location) { Query = Query(location, "digest", blob.Descriptor.Digest) }.Uri;
        using var response = await client.SendAsync(() =>
        {
            HttpContent content = withBody ? blob.Content(0, blob.Descriptor.Size, sent) : new ByteArrayContent([]);
            content.Headers.ContentType = new("application/octet-stream");
            return new HttpRequestMessage(HttpMethod.Put, uri) { Content = content };
        }, blob.Name, cancel, retry: false).ConfigureAwait(false);
        if (RetryPolicy.IsTransient(response.StatusCode)) throw new TransientFailure($"PUT {(int)response.StatusCode}");
        await RegistryClient.EnsureAsync(response, blob.Name, $"committing the upload to {client.Registry}/{repository}", HttpStatusCode.Created).ConfigureAwait(false);
    }

    private async Task<bool> ExistsAsync(BlobSource blob, CancellationToken cancel)
    {
        var uri = client.V2(repository, $"blobs/{blob.Descriptor.Digest}");
        using var response = await client.SendAsync(() => new HttpRequestMessage(HttpMethod.Head, uri), blob.Name, cancel).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) return false;
        await RegistryClient.EnsureAsync(response, blob.Name, $"checking for the blob in {client.Registry}/{repository}", HttpStatusCode.OK).ConfigureAwait(false);
        return true;
    }

    private static Action<long>? Offset(Action<long>? sent, long start) => sent is null ? null : n => sent(start + n);

    private static string Query(Uri location, string name, string value)
    {
        string existing = location.Query.TrimStart('?');
        return (existing.Length > 0 ? existing + "&" : "") + $"{name}={Uri.EscapeDataString(value)}";
    }
}
