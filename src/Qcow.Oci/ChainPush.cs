using System.Net;
using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;

namespace Qcow.Oci;

/// <summary>What to push: a folder holding chain.json and its layers, where to, and under which tags.</summary>
public sealed record PushRequest
{
    /// <summary>The folder with chain.json and the layers it lists.</summary>
    public required string Folder { get; init; }
    /// <summary>Where to: registry, repository and (optionally) the first tag; a digest is refused.</summary>
    public required ImageReference Reference { get; init; }
    /// <summary>More tags for the same manifest. With no tag at all, <c>latest</c>.</summary>
    public IReadOnlyList<string> Tags { get; init; } = [];
    /// <summary>Repositories of the same registry to mount blobs from instead of uploading them.</summary>
    public IReadOnlyList<string> MountFrom { get; init; } = [];
}

/// <summary>What a push did.</summary>
public sealed record PushResult(ImageReference Reference, string Digest, IReadOnlyList<string> Tags,
    int BlobsUploaded, int BlobsSkipped, int BlobsMounted, long BytesUploaded)
{
    /// <summary><c>host/repository@sha256:…</c>: the reference that names exactly what was pushed.</summary>
    public ImageReference Pinned => Reference.WithDigest(Digest);
}

/// <summary>
/// Pushes a chain folder as one OCI artifact: each layer a blob in chain order (bottom first), then chain.json, each
/// titled with its file name, under an OCI 1.1 manifest with artifactType <see cref="MediaTypes.Chain"/>. Every
/// layer is hashed and checked against chain.json before anything is sent, so a changed layer is never pushed under
/// a stale digest.
/// </summary>
public static class ChainPush
{
    /// <summary>Pushes; throws <see cref="QcowException"/> (a <see cref="RegistryException"/> for registry trouble) naming the file or reference.</summary>
    public static async Task<PushResult> RunAsync(PushRequest request, RegistryOptions options, CancellationToken cancel = default)
    {
        var reference = request.Reference;
        if (reference.Digest is not null) throw new RegistryException(reference.ToString(), "push needs a tag, not a digest");
        var tags = new[] { reference.Tag }.Concat(request.Tags).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        foreach (string tag in tags) ImageReference.Parse($"{reference.Registry}/{reference.Repository}:{tag}");
        if (tags.Count == 0) tags.Add("latest");
        foreach (string from in request.MountFrom) ImageReference.Parse($"{reference.Registry}/{from}");
        if (options.MaxConcurrentUploads is < 1 or > RegistryOptions.MostConcurrentUploads)
            throw new RegistryException(reference.ToString(),
                $"uploads at a time must be 1 to {RegistryOptions.MostConcurrentUploads}, not {options.MaxConcurrentUploads}");

        var blobs = ReadChain(request.Folder, options.Progress, cancel);
        var manifest = new ArtifactManifest(MediaTypes.Chain, ArtifactManifest.EmptyConfig, blobs.Select(b => b.Descriptor).ToList());
        byte[] manifestBytes = manifest.ToJson();
        string digest = Digests.Of(manifestBytes);

        using var client = new RegistryClient(reference.Registry, options);
        var all = blobs.Prepend(new BlobSource(ArtifactManifest.EmptyConfig, null, ArtifactManifest.EmptyConfigBytes)).ToList();
        var progress = new PushProgress(options.Progress, all, $"pushing {all.Count} blobs to {reference}");
        var outcomes = await PushBlobsAsync(new BlobUploader(client, reference.Repository), all, request.MountFrom, progress,
            options.MaxConcurrentUploads, cancel).ConfigureAwait(false);
        int uploaded = outcomes.Count(o => o == BlobOutcome.Uploaded);
        int skipped = outcomes.Count(o => o == BlobOutcome.Skipped);
        int mounted = outcomes.Count(o => o == BlobOutcome.Mounted);
        long bytes = all.Where((_, i) => outcomes[i] == BlobOutcome.Uploaded).Sum(b => b.Descriptor.Size);
        // The manifest goes last, only once every blob it names is in the registry: a tag never points at a gap.
        foreach (string tag in tags)
        {
            string subject = reference.WithTag(tag).ToString();
            var uri = client.V2(reference.Repository, $"manifests/{tag}");
            using var response = await client.SendAsync(() => new HttpRequestMessage(HttpMethod.Put, uri)
            {
                Content = new ByteArrayContent(manifestBytes) { Headers = { ContentType = new(MediaTypes.ImageManifest) } },
            }, subject, cancel).ConfigureAwait(false);
            await RegistryClient.EnsureAsync(response, subject, "putting the manifest", HttpStatusCode.Created).ConfigureAwait(false);
            if (response.Headers.TryGetValues("Docker-Content-Digest", out var said) && said.First() != digest)
                throw new RegistryException(subject, $"the registry stored the manifest as {said.First()}, not {digest}");
        }
        return new PushResult(reference.WithTag(tags[0]), digest, tags, uploaded, skipped, mounted, bytes);
    }

    /// <summary>
    /// Pushes <paramref name="blobs"/>, at most <paramref name="concurrency"/> at a time, taken in order. The first
    /// failure cancels the uploads in flight and starts no other; it alone is thrown (what it cancelled is not).
    /// </summary>
    private static async Task<BlobOutcome[]> PushBlobsAsync(BlobUploader uploader, List<BlobSource> blobs, IReadOnlyList<string> mountFrom,
        PushProgress progress, int concurrency, CancellationToken cancel)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var outcomes = new BlobOutcome[blobs.Count];
        Exception? first = null;
        int next = -1;
        async Task WorkAsync()
        {
            for (int i = Interlocked.Increment(ref next); i < blobs.Count && !stop.IsCancellationRequested; i = Interlocked.Increment(ref next))
            {
                try
                {
                    outcomes[i] = await uploader.PushAsync(blobs[i], mountFrom, progress.For(i), stop.Token).ConfigureAwait(false);
                    progress.Finished(i);
                }
                catch (Exception e)
                {
                    if (e is not OperationCanceledException || !stop.IsCancellationRequested) Interlocked.CompareExchange(ref first, e, null);
                    await stop.CancelAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
        await Task.WhenAll(Enumerable.Range(0, Math.Min(concurrency, blobs.Count)).Select(_ => Task.Run(WorkAsync, CancellationToken.None))).ConfigureAwait(false);
        cancel.ThrowIfCancellationRequested();
        if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        return outcomes;
    }

    /// <summary>The blobs of a chain folder, layers bottom first and chain.json last, each verified against chain.json.</summary>
    private static List<BlobSource> ReadChain(string folder, Action<ProgressInfo>? progress, CancellationToken cancel)
    {
        string chainPath = Path.Combine(folder, ChainManifest.FileName);
        byte[] chainBytes;
        try
        {
            chainBytes = File.ReadAllBytes(chainPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QcowException(chainPath, $"cannot read: {e.Message}");
        }
        var chain = ChainManifest.Parse(chainBytes, chainPath);
        var blobs = new List<BlobSource>();
        foreach (var layer in chain.Layers)
        {
            string path = Path.Combine(folder, layer.File);
            if (!File.Exists(path)) throw new QcowException(path, "listed in chain.json but missing");
            string stage = $"verifying {layer.File}";
            long length = new FileInfo(path).Length;
            (string digest, long size) = Digests.OfFile(path, progress is null ? null : n => progress(new ProgressInfo(n, length, stage)), cancel);
            if (digest != Digests.Sha256Prefix + layer.Sha256)
                throw new QcowException(path, $"SHA-256 is {digest[Digests.Sha256Prefix.Length..]} but chain.json records {layer.Sha256}: the layer changed since chain.json was written; rebuild the chain");
            blobs.Add(new BlobSource(new Descriptor(MediaTypes.Layer, digest, size, layer.File), path, default));
        }
        blobs.Add(new BlobSource(new Descriptor(MediaTypes.Chain, Digests.Of(chainBytes), chainBytes.Length, ChainManifest.FileName), null, chainBytes));
        return blobs;
    }
}
