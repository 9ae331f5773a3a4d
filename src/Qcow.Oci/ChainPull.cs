using System.Net;
using System.Security.Cryptography;
using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Engine.Writing;

namespace Qcow.Oci;

/// <summary>What to pull and where to.</summary>
public sealed record PullRequest
{
    /// <summary>The artifact: by tag or by <c>@sha256:</c> digest.</summary>
    public required ImageReference Reference { get; init; }
    /// <summary>The folder to write chain.json and the layers into (created if needed).</summary>
    public required string Folder { get; init; }
}

/// <summary>What a pull did: the manifest digest, and the files written (new or replaced) and kept.</summary>
public sealed record PullResult(string Digest, IReadOnlyList<string> Written, IReadOnlyList<string> Replaced,
    IReadOnlyList<string> Skipped, long BytesDownloaded);

/// <summary>
/// Pulls a chain artifact into a folder. Every blob is checked for size and digest while it downloads into a
/// temporary file; only when all of them (and chain.json against them) verify are they renamed into place, layers
/// bottom first and chain.json last. A file already present with the right digest is kept.
/// </summary>
public static class ChainPull
{
    /// <summary>A chain.json larger than this is refused (one layer takes a few hundred bytes).</summary>
    public const int MaxChainJsonBytes = 16 << 20;

    /// <summary>Pulls; throws <see cref="QcowException"/> naming the blob or file, leaving the folder as it was.</summary>
    public static async Task<PullResult> RunAsync(PullRequest request, RegistryOptions options, CancellationToken cancel = default)
    {
        var reference = request.Reference;
        string subject = reference.ToString();
        using var client = new RegistryClient(reference.Registry, options);
        (byte[] bytes, string digest) = await GetManifestAsync(client, reference, cancel).ConfigureAwait(false);
        var manifest = ArtifactManifest.Parse(bytes, subject);
        var files = Files(manifest, subject);

        var staged = new List<OutputFile>();
        var written = new List<string>();
        var replaced = new List<string>();
        var skipped = new List<string>();
        long downloaded = 0;
        try
        {
            byte[]? chainBytes = null;
            foreach (var d in files)
            {
                string target = Path.Combine(request.Folder, d.Title!);
                if (IsPresent(target, d, cancel))
                {
                    skipped.Add(d.Title!);
                    if (d.Title == ChainManifest.FileName) chainBytes = File.ReadAllBytes(target);
                    continue;
                }
                (File.Exists(target) ? replaced : written).Add(d.Title!);
                var output = OutputFile.Create(target);
                staged.Add(output);
                bool isChain = d.Title == ChainManifest.FileName;
                if (isChain && d.Size > MaxChainJsonBytes) throw new RegistryException(subject, $"its chain.json is larger than {MaxChainJsonBytes} bytes");
                using var copy = isChain ? new MemoryStream() : null;
                await DownloadAsync(client, reference, d, output, copy, options.Progress, cancel).ConfigureAwait(false);
                downloaded += d.Size;
                if (copy is not null) chainBytes = copy.ToArray();
            }
            CheckChain(chainBytes!, files, Path.Combine(request.Folder, ChainManifest.FileName));
            // Layers before chain.json: a folder whose chain.json is new has all of its layers.
            foreach (var output in staged) output.Commit(false);
        }
        finally
        {
            foreach (var output in staged) output.Dispose();
        }
        return new PullResult(digest, written, replaced, skipped, downloaded);
    }

    /// <summary>The manifest's bytes and digest, checked against the digest asked for and the one the registry states.</summary>
    private static async Task<(byte[], string)> GetManifestAsync(RegistryClient client, ImageReference reference, CancellationToken cancel)
    {
        string subject = reference.ToString();
        var uri = client.V2(reference.Repository, $"manifests/{reference.Reference}");
        using var response = await client.SendAsync(() =>
        {
            var r = new HttpRequestMessage(HttpMethod.Get, uri);
            r.Headers.Accept.Add(new(MediaTypes.ImageManifest));
            return r;
        }, subject, cancel, completion: HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound) throw new RegistryException(subject, "no such manifest in the registry (404)");
        await RegistryClient.EnsureAsync(response, subject, "getting the manifest", HttpStatusCode.OK).ConfigureAwait(false);
        if (response.Content.Headers.ContentLength > ArtifactManifest.MaxBytes)
            throw new RegistryException(subject, $"the manifest is larger than {ArtifactManifest.MaxBytes} bytes");
        using var buffer = new MemoryStream();
        try
        {
            using var body = await response.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false);
            using var guard = new StallGuard(client.Options.StallTimeout, cancel);
            byte[] chunk = new byte[81920];
            int n;
            while ((n = await guard.ReadAsync(body, chunk).ConfigureAwait(false)) > 0)
            {
                buffer.Write(chunk, 0, n);
                if (buffer.Length > ArtifactManifest.MaxBytes) throw new RegistryException(subject, $"the manifest is larger than {ArtifactManifest.MaxBytes} bytes");
            }
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
            throw new RegistryException(subject, $"reading the manifest failed: {e.Message}", e);
        }
        byte[] bytes = buffer.ToArray();
        string digest = Digests.Of(bytes);
        if (reference.Digest is { } wanted && wanted != digest)
            throw new RegistryException(subject, $"the manifest's digest is {digest}, not the {wanted} asked for");
        if (response.Headers.TryGetValues("Docker-Content-Digest", out var said) && said.First() != digest)
            throw new RegistryException(subject, $"the manifest's digest is {digest} but the registry says {said.First()}");
        return (bytes, digest);
    }

    /// <summary>The titled blobs, validated: plain unique file names, chain.json among them.</summary>
    private static List<Descriptor> Files(ArtifactManifest manifest, string subject)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var files = new List<Descriptor>();
        for (int i = 0; i < manifest.Layers.Count; i++)
        {
            var d = manifest.Layers[i];
            if (d.Title is null) throw new RegistryException(subject, $"manifest layers[{i}] ({d.Digest}) has no {MediaTypes.TitleAnnotation}: not a chain artifact");
            if (!ChainManifest.IsPlainFileName(d.Title) || d.Title.StartsWith('.'))
                throw new RegistryException(subject, $"manifest layers[{i}] title '{d.Title}' is not a plain file name; refused");
            if (!seen.Add(d.Title)) throw new RegistryException(subject, $"manifest layers[{i}] title '{d.Title}' appears twice");
            files.Add(d);
        }
        if (!seen.Contains(ChainManifest.FileName)) throw new RegistryException(subject, $"the artifact has no {ChainManifest.FileName}: not a chain artifact");
        // chain.json is written last, so its presence means a complete folder.
        return [.. files.Where(f => f.Title != ChainManifest.FileName), .. files.Where(f => f.Title == ChainManifest.FileName)];
    }

    /// <summary>chain.json must list exactly the artifact's other files, with their digests.</summary>
    private static void CheckChain(byte[] chainBytes, List<Descriptor> files, string chainPath)
    {
        var chain = ChainManifest.Parse(chainBytes, chainPath);
        var layers = files.Where(f => f.Title != ChainManifest.FileName).ToDictionary(f => f.Title!, f => f.Digest, StringComparer.Ordinal);
        if (chain.Layers.Count != layers.Count)
            throw new RegistryException(chainPath, $"lists {chain.Layers.Count} layers but the artifact holds {layers.Count}");
        foreach (var l in chain.Layers)
        {
            if (!layers.TryGetValue(l.File, out var d)) throw new RegistryException(chainPath, $"lists {l.File}, which the artifact does not hold");
            if (d != Digests.Sha256Prefix + l.Sha256) throw new RegistryException(chainPath, $"records sha256 {l.Sha256} for {l.File} but the artifact's blob is {d}");
        }
    }

    private static bool IsPresent(string path, Descriptor d, CancellationToken cancel)
    {
        if (!File.Exists(path) || new FileInfo(path).Length != d.Size) return false;
        return Digests.OfFile(path, cancel: cancel).Digest == d.Digest;
    }

    /// <summary>Streams one blob into <paramref name="output"/>, hashing as it goes; a transient failure starts it again.</summary>
    private static async Task DownloadAsync(RegistryClient client, ImageReference reference, Descriptor d, OutputFile output,
        MemoryStream? copy, Action<ProgressInfo>? progress, CancellationToken cancel)
    {
        string subject = $"blob {d.Digest} ({d.Title})";
        var uri = client.V2(reference.Repository, $"blobs/{d.Digest}");
        int failures = 0;
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            while (true)
            {
                try
                {
                    using var response = await client.SendAsync(() => new HttpRequestMessage(HttpMethod.Get, uri), subject, cancel,
                        completion: HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
                    await RegistryClient.EnsureAsync(response, subject, $"downloading from {reference.Registry}/{reference.Repository}", HttpStatusCode.OK).ConfigureAwait(false);
                    output.Stream.SetLength(0);
                    output.Stream.Position = 0;
                    copy?.SetLength(0);
                    using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
                    using var body = await response.Content.ReadAsStreamAsync(cancel).ConfigureAwait(false);
                    using var guard = new StallGuard(client.Options.StallTimeout, cancel);
                    long total = 0;
                    int n;
                    while ((n = await guard.ReadAsync(body, buffer).ConfigureAwait(false)) > 0)
                    {
                        total += n;
                        // Bounded by the size the manifest states: a blob that runs on is wrong, however long it is.
                        if (total > d.Size) throw new RegistryException(subject, $"is larger than the {d.Size} bytes the manifest states; nothing was written");
                        hash.AppendData(buffer, 0, n);
                        output.Stream.Write(buffer, 0, n);
                        copy?.Write(buffer, 0, n);
                        progress?.Invoke(new ProgressInfo(total, d.Size, $"pulling {d.Title}"));
                    }
                    if (total != d.Size) throw new RegistryException(subject, $"is {total} bytes, not the {d.Size} the manifest states; nothing was written");
                    string got = Digests.Sha256Prefix + Convert.ToHexStringLower(hash.GetHashAndReset());
                    if (got != d.Digest) throw new RegistryException(subject, $"digest mismatch: the bytes received hash to {got}; nothing was written");
                    return;
                }
                catch (Exception e) when (RetryPolicy.IsTransient(e, cancel) && e is not QcowException)
                {
                    if (!client.Retry.CanRetry(++failures)) throw new RegistryException(subject, $"download failed {failures} times: {e.Message}", e);
                    await client.Retry.WaitAsync(failures, cancel).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
