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

        var blobs = ReadChain(request.Folder, options.Progress, cancel);
        var manifest = new ArtifactManifest(MediaTypes.Chain, ArtifactManifest.EmptyConfig, blobs.Select(b => b.Descriptor).ToList());
        byte[] manifestBytes = manifest.ToJson();
        string digest = Digests.Of(manifestBytes);

        using var client = new RegistryClient(reference.Registry, options);
        var uploader = new BlobUploader(client, reference.Repository);
        int uploaded = 0, skipped = 0, mounted = 0;
        long bytes = 0;
        var config = new BlobSource(ArtifactManifest.EmptyConfig, null, ArtifactManifest.EmptyConfigBytes);
        foreach (var blob in blobs.Prepend(config))
        {
            switch (await uploader.PushAsync(blob, request.MountFrom, cancel).ConfigureAwait(false))
            {
                case BlobOutcome.Uploaded: uploaded++; bytes += blob.Descriptor.Size; break;
                case BlobOutcome.Skipped: skipped++; break;
                case BlobOutcome.Mounted: mounted++; break;
            }
        }
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
