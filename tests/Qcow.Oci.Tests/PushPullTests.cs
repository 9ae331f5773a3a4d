using System.Net;
using System.Text.Json;
using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Testing;
using Qcow.Oci.Tests.Support;
using Qcow.Testing.Registry;

namespace Qcow.Oci.Tests;

/// <summary>Push and pull against a real registry (docker-registry on 127.0.0.1, anonymous, plain HTTP).</summary>
public sealed class PushPullTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    [SkippableFact]
    public async Task Push_then_pull_gives_a_byte_identical_folder_and_a_second_push_uploads_nothing()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Seed(dir["chain"]);
        var reference = registry.Ref("seed/chain:v1");

        var first = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference }, registry.Options());
        Assert.Equal(9, first.BlobsUploaded); // empty config, seven layers, chain.json
        Assert.Equal(0, first.BlobsSkipped);
        Assert.Matches("^sha256:[0-9a-f]{64}$", first.Digest);

        var second = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference }, registry.Options());
        Assert.Equal((0, 9, first.Digest), (second.BlobsUploaded, second.BlobsSkipped, second.Digest));

        var pulled = await ChainPull.RunAsync(new PullRequest { Reference = reference, Folder = dir["pulled"] }, registry.Options());
        Assert.Equal(first.Digest, pulled.Digest);
        Assert.Equal(8, pulled.Written.Count);
        Chains.AssertSameFiles(chain, dir["pulled"]);
    }

    [SkippableFact]
    public void Cli_push_prints_the_pinned_reference_and_pull_by_digest_and_by_each_tag_is_byte_identical()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 1, 70_000, 5_000, 123);
        var push = QcowProcess.RunWith(null, "push", "-t", "build-7", "-t", "stable", chain, $"{registry.Host}/team/vm:1.0");
        Assert.True(push.ExitCode == 0, push.ToString());
        string pinned = push.StdOut.Trim();
        Assert.Matches($"^{registry.Host.Replace(".", "\\.")}/team/vm@sha256:[0-9a-f]{{64}}$", pinned);
        Assert.Contains("tags: 1.0, build-7, stable", push.StdErr);

        foreach (string source in new[] { pinned, $"{registry.Host}/team/vm:1.0", $"{registry.Host}/team/vm:build-7", $"{registry.Host}/team/vm:stable" })
        {
            string target = dir[$"pull-{Guid.NewGuid():N}"];
            var pull = QcowProcess.RunWith(null, "pull", source, target);
            Assert.True(pull.ExitCode == 0, pull.ToString());
            Assert.Equal(pinned, pull.StdOut.Trim());
            Chains.AssertSameFiles(chain, target);
        }
    }

    [SkippableFact]
    public async Task What_push_wrote_is_a_standard_artifact_read_with_plain_distribution_api_requests()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Seed(dir["chain"]);
        var push = QcowProcess.RunWith(null, "push", chain, $"{registry.Host}/plain/reader:v1");
        Assert.True(push.ExitCode == 0, push.ToString());

        // Nothing of ours from here on: HttpClient and the distribution API.
        using var http = new HttpClient { BaseAddress = new Uri($"http://{registry.Host}/v2/plain/reader/") };
        using var request = new HttpRequestMessage(HttpMethod.Get, "manifests/v1");
        request.Headers.Accept.ParseAdd("application/vnd.oci.image.manifest.v1+json");
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/vnd.oci.image.manifest.v1+json", response.Content.Headers.ContentType?.MediaType);
        byte[] manifestBytes = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(push.StdOut.Trim().Split('@')[1], "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(manifestBytes)));
        using var manifest = JsonDocument.Parse(manifestBytes);
        var root = manifest.RootElement;
        Assert.Equal(2, root.GetProperty("schemaVersion").GetInt32());
        Assert.Equal("application/vnd.qcow-build.chain.v1+json", root.GetProperty("artifactType").GetString());
        Assert.Equal("application/vnd.oci.empty.v1+json", root.GetProperty("config").GetProperty("mediaType").GetString());
        Assert.Equal("sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", root.GetProperty("config").GetProperty("digest").GetString());

        var chainJson = ChainManifest.Read(Path.Combine(chain, "chain.json"));
        var titles = root.GetProperty("layers").EnumerateArray()
            .Select(l => l.GetProperty("annotations").GetProperty("org.opencontainers.image.title").GetString()).ToList();
        Assert.Equal(chainJson.Layers.Select(l => l.File).Append("chain.json"), titles); // chain order, bottom first
        foreach (var layer in root.GetProperty("layers").EnumerateArray())
        {
            string title = layer.GetProperty("annotations").GetProperty("org.opencontainers.image.title").GetString()!;
            byte[] blob = await http.GetByteArrayAsync($"blobs/{layer.GetProperty("digest").GetString()}");
            Assert.Equal(File.ReadAllBytes(Path.Combine(chain, title)), blob);
            Assert.Equal(blob.Length, layer.GetProperty("size").GetInt64());
            if (title != "chain.json")
                Assert.Equal("sha256:" + chainJson.Layers.Single(l => l.File == title).Sha256, layer.GetProperty("digest").GetString());
        }
    }

    [SkippableFact]
    public async Task Chunked_upload_survives_transient_failures_by_resuming_and_backs_off_without_sleeping()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 2, 40_000, 9_000);
        int patches = 0, puts = 0;
        FaultHandler? faults = null;
        var delays = new List<TimeSpan>();
        var options = registry.Options(wrap: h => faults = new FaultHandler(h)
        {
            Decide = (r, _) =>
            {
                if (r.Method == HttpMethod.Patch)
                    return Interlocked.Increment(ref patches) switch
                    {
                        2 => Fault.Reply(HttpStatusCode.ServiceUnavailable), // refused: resend the same chunk
                        4 => Fault.Reset,                                   // the registry took it, the answer was lost
                        _ => Fault.None,
                    };
                // The first closing PUT of a chunked upload (no body) is refused: the chunks are all there.
                if (r.Method == HttpMethod.Put && r.Content?.Headers.ContentLength == 0)
                    return Interlocked.Increment(ref puts) == 1 ? Fault.Reply(HttpStatusCode.BadGateway) : Fault.None;
                return Fault.None;
            },
        }) with { ChunkSize = 4096, MaxConcurrentUploads = 1, Delay = (d, _) => { delays.Add(d); return Task.CompletedTask; } };
        // One blob at a time: the faults above count PATCHes and PUTs over the whole push.

        var result = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("chunks/test:v1") }, options);
        Assert.Equal(4, result.BlobsUploaded);
        // 40,000 bytes in 4 KiB chunks is 10 PATCHes, 9,000 bytes 3. After each failure the client asks where the
        // upload stands (GET on the upload): the refused chunk is resent from there, and the refused closing PUT
        // is sent again with nothing resent. The lost answer leaves only a Location whose state the registry no
        // longer accepts, so that blob starts over: chunks 1..3 and the refused one were sent before.
        var seen = faults!.Seen.Select(x => x.Split(' ')[0] + (x.Contains("/blobs/uploads/", StringComparison.Ordinal) ? " upload" : "")).ToList();
        Assert.True(4 + 10 + 3 == patches, string.Join("\n", seen));
        Assert.Equal(3, seen.Count(x => x == "GET upload"));
        Assert.Equal(1 + 2 + 1 + 1, seen.Count(x => x == "POST upload")); // config, layer0 twice, layer1, chain.json
        Assert.Equal(3, puts); // closing PUTs: layer0 refused, layer0 again (no chunk resent), layer1
        // Backoff per blob, doubling: layer0's three failures.
        Assert.Equal(new[] { 500, 1000, 2000 }, delays.Select(d => (int)d.TotalMilliseconds));

        var pulled = await ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("chunks/test:v1"), Folder = dir["pulled"] }, registry.Options());
        Chains.AssertSameFiles(chain, dir["pulled"]);
    }

    [SkippableFact]
    public async Task Retries_are_bounded_and_back_off_exponentially_then_fail_with_one_clear_error()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 3, 1000);
        var delays = new List<TimeSpan>();
        var options = registry.Options(wrap: h => new FaultHandler(h) { Decide = (_, _) => Fault.Reply(HttpStatusCode.ServiceUnavailable) })
            with { MaxRetries = 4, MaxConcurrentUploads = 1, Delay = (d, _) => { delays.Add(d); return Task.CompletedTask; } };
        var e = await Assert.ThrowsAsync<RegistryException>(() =>
            ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("down/test:v1") }, options));
        Assert.Contains("503", e.Message);
        Assert.Equal(new[] { 500, 1000, 2000, 4000 }, delays.Select(d => (int)d.TotalMilliseconds));
    }

    [SkippableFact]
    public async Task Concurrent_uploads_overlap_report_one_progress_line_and_give_the_same_manifest_as_one_at_a_time()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Seed(dir["chain"]);
        var one = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("concurrent/one:v1") },
            registry.Options() with { MaxConcurrentUploads = 1 });

        // The first two blob uploads (PUT …?digest=) wait for each other: only concurrent uploads get past. A push
        // that uploaded one at a time would wait for ever; the bound below only turns that hang into a failure.
        var bothInFlight = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int uploads = 0, inCallback = 0, overlappingCallbacks = 0;
        var reports = new List<Qcow.Engine.Operations.ProgressInfo>();
        var options = registry.Options(wrap: h => new FaultHandler(h)
        {
            Before = async (r, cancel) =>
            {
                if (r.Method != HttpMethod.Put || !r.RequestUri!.Query.Contains("digest=", StringComparison.Ordinal)) return;
                int n = Interlocked.Increment(ref uploads);
                if (n == 2) bothInFlight.SetResult();
                if (n <= 2) await bothInFlight.Task.WaitAsync(cancel);
            },
        }) with
        {
            MaxConcurrentUploads = 4,
            Progress = p =>
            {
                if (Interlocked.Increment(ref inCallback) > 1) Interlocked.Increment(ref overlappingCallbacks);
                reports.Add(p);
                Interlocked.Decrement(ref inCallback);
            },
        };
        var four = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("concurrent/four:v1") }, options)
            .WaitAsync(TimeSpan.FromMinutes(2));

        Assert.Equal(one.Digest, four.Digest); // the manifest's bytes do not depend on the order uploads finish in
        Assert.Equal((9, 9), (one.BlobsUploaded, four.BlobsUploaded));
        Assert.Equal(9, uploads);
        // After the layers are verified one by one, one progress line over all blobs: one stage, the callback never
        // entered twice at once, ending at the total.
        Assert.Equal(0, overlappingCallbacks);
        var pushing = reports.SkipWhile(r => r.Stage.StartsWith("verifying ", StringComparison.Ordinal)).ToList();
        Assert.Equal($"pushing 9 blobs to {registry.Host}/concurrent/four:v1", Assert.Single(pushing.Select(r => r.Stage).Distinct()));
        long total = Directory.GetFiles(chain).Sum(f => new FileInfo(f).Length) + 2; // the layers, chain.json, the empty config
        Assert.Equal(total, reports[^1].Total);
        Assert.Equal(total, reports[^1].Done);
        var pulled = await ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("concurrent/four:v1"), Folder = dir["pulled"] }, registry.Options());
        Chains.AssertSameFiles(chain, dir["pulled"]);
    }

    [SkippableFact]
    public async Task A_failed_blob_cancels_the_uploads_in_flight_and_is_the_one_error_and_no_manifest_is_put()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 9, 9_000, 8_000, 7_000, 6_000, 5_000, 4_000, 3_000);
        var layers = ChainManifest.Read(Path.Combine(chain, "chain.json")).Layers.Select(l => "sha256:" + l.Sha256).ToList();
        // layer0's upload is held until the push cancels it; layer1's (the second layer) is refused with a 403 once
        // layer0's is held, so the refusal always finds an upload in flight to cancel.
        bool layer0Cancelled = false;
        var layer0Held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        FaultHandler? faults = null;
        bool Uploads(HttpRequestMessage r, string digest) =>
            r.Method == HttpMethod.Put && r.RequestUri!.Query.Contains(Uri.EscapeDataString(digest), StringComparison.Ordinal);
        var options = registry.Options(wrap: h => faults = new FaultHandler(h)
        {
            Before = async (r, cancel) =>
            {
                if (Uploads(r, layers[1])) await layer0Held.Task.WaitAsync(cancel);
                if (!Uploads(r, layers[0])) return;
                try
                {
                    layer0Held.SetResult();
                    await Task.Delay(Timeout.Infinite, cancel);
                }
                catch (OperationCanceledException)
                {
                    layer0Cancelled = true;
                    throw;
                }
            },
            Decide = (r, _) => Uploads(r, layers[1]) ? Fault.Reply(HttpStatusCode.Forbidden) : Fault.None,
        }) with { MaxConcurrentUploads = 3 };

        var e = await Assert.ThrowsAsync<RegistryException>(() =>
            ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("failing/push:v1") }, options).WaitAsync(TimeSpan.FromMinutes(2)));
        Assert.Equal("layer1.qcow2", e.FilePath);
        Assert.Contains("403", e.Message);
        Assert.True(layer0Cancelled);
        Assert.DoesNotContain(faults!.Seen, s => s.Contains("/manifests/", StringComparison.Ordinal));
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://{registry.Host}/v2/failing/push/manifests/v1")).StatusCode);

        // The CLI refuses a concurrency below one before anything is sent.
        var cli = QcowProcess.RunWith(null, "push", "--concurrency", "0", chain, $"{registry.Host}/failing/push:v1");
        Assert.Equal(1, cli.ExitCode);
        Assert.Equal("qcow: --concurrency 0: not a number from 1 to 64", cli.StdErr.Trim());
        // And the library, used directly, what neither the CLI nor the SDK lets through.
        foreach (int n in new[] { 0, RegistryOptions.MostConcurrentUploads + 1 })
        {
            var refused = await Assert.ThrowsAsync<RegistryException>(() => ChainPush.RunAsync(
                new PushRequest { Folder = chain, Reference = registry.Ref("failing/push:v1") }, registry.Options() with { MaxConcurrentUploads = n }));
            Assert.Contains($"must be 1 to 64, not {n}", refused.Message);
        }
    }

    [SkippableFact]
    public async Task A_layer_changed_after_chain_json_was_written_is_refused_before_anything_is_sent()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 4, 3000, 2000);
        byte[] layer = File.ReadAllBytes(Path.Combine(chain, "layer1.qcow2"));
        layer[7] ^= 1;
        File.WriteAllBytes(Path.Combine(chain, "layer1.qcow2"), layer);
        FaultHandler? faults = null;
        var e = await Assert.ThrowsAsync<QcowException>(() => ChainPush.RunAsync(
            new PushRequest { Folder = chain, Reference = registry.Ref("stale/test:v1") }, registry.Options(wrap: h => faults = new FaultHandler(h))));
        Assert.Equal(Path.Combine(chain, "layer1.qcow2"), e.FilePath);
        Assert.Contains("chain.json records", e.Message);
        Assert.True(faults is null || faults.Seen.Count == 0);

        var cli = QcowProcess.RunWith(null, "push", chain, $"{registry.Host}/stale/test:v1");
        Assert.Equal(1, cli.ExitCode);
        Assert.StartsWith($"qcow: {Path.Combine(chain, "layer1.qcow2")}: SHA-256 is", cli.StdErr);
        Assert.DoesNotContain("   at ", cli.StdErr);
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.NotFound, (await http.GetAsync($"http://{registry.Host}/v2/stale/test/manifests/v1")).StatusCode);
    }

    [SkippableFact]
    public async Task A_blob_that_does_not_match_its_digest_is_an_error_naming_it_and_leaves_the_folder_as_it_was()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 5, 5000, 6000, 7000);
        var pushed = await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("corrupt/test:v1") }, registry.Options());
        var digest = "sha256:" + ChainManifest.Read(Path.Combine(chain, "chain.json")).Layers[1].Sha256;

        string target = dir["target"];
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "layer1.qcow2"), "an older file that must survive");
        var before = Chains.Snapshot(target);
        var options = registry.Options(wrap: h => new FaultHandler(h)
        {
            Decide = (r, _) => r.Method == HttpMethod.Get && r.RequestUri!.AbsolutePath.EndsWith(digest, StringComparison.Ordinal) ? Fault.Corrupt : Fault.None,
        });
        var e = await Assert.ThrowsAsync<RegistryException>(() =>
            ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("corrupt/test:v1"), Folder = target }, options));
        Assert.Contains(digest, e.Message);
        Assert.Contains("layer1.qcow2", e.Message);
        Assert.Contains("digest mismatch", e.Message);
        var after = Chains.Snapshot(target);
        Assert.Equal(before.Keys, after.Keys); // no temporaries, no other layer renamed into place
        Assert.Equal(before["layer1.qcow2"], after["layer1.qcow2"]);
        _ = pushed;
    }

    [SkippableFact]
    public async Task A_download_that_stalls_is_retried_and_a_cancelled_pull_leaves_the_folder_as_it_was()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 8, 50_000, 20_000);
        var reference = registry.Ref("stall/test:v1");
        await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = reference }, registry.Options());
        string layer1 = "sha256:" + ChainManifest.Read(Path.Combine(chain, "chain.json")).Layers[1].Sha256;

        // The first download of layer1 sends half its bytes and then nothing: it is given up and fetched again.
        // StallTimeout bounds that wait (no sleep); it is long enough that a loaded machine's ordinary reads never trip it.
        int layer1Gets = 0;
        var delays = new List<TimeSpan>();
        var stalling = registry.Options(wrap: h => new FaultHandler(h)
        {
            Decide = (r, _) => r.RequestUri!.AbsolutePath.EndsWith(layer1, StringComparison.Ordinal) && Interlocked.Increment(ref layer1Gets) == 1 ? Fault.Stall : Fault.None,
        }) with { StallTimeout = TimeSpan.FromSeconds(2), Delay = (d, _) => { delays.Add(d); return Task.CompletedTask; } };
        await ChainPull.RunAsync(new PullRequest { Reference = reference, Folder = dir["stalled"] }, stalling);
        Assert.Equal(2, layer1Gets);
        Assert.Single(delays);
        Chains.AssertSameFiles(chain, dir["stalled"]);

        // Cancelled while layer1 downloads (layer0 already complete in its temporary file): nothing is left.
        using var cancel = new CancellationTokenSource();
        var cancelling = registry.Options(wrap: h => new FaultHandler(h)
        {
            Decide = (r, _) =>
            {
                if (r.RequestUri!.AbsolutePath.EndsWith(layer1, StringComparison.Ordinal)) cancel.Cancel();
                return Fault.None;
            },
        });
        string target = dir["cancelled"];
        Directory.CreateDirectory(target);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            ChainPull.RunAsync(new PullRequest { Reference = reference, Folder = target }, cancelling, cancel.Token));
        Assert.Empty(Directory.GetFileSystemEntries(target));
    }

    [SkippableFact]
    public async Task Pull_refuses_titles_that_are_not_plain_file_names()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        using var http = new HttpClient { BaseAddress = new Uri($"http://{registry.Host}/v2/evil/chain/") };
        byte[] payload = "owned"u8.ToArray();
        string digest = await UploadRawBlobAsync(http, payload);
        string emptyDigest = await UploadRawBlobAsync(http, "{}"u8.ToArray());
        foreach (string title in new[] { "../escape.qcow2", "sub/dir.qcow2", "/etc/evil", ".hidden" })
        {
            string manifest = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["schemaVersion"] = 2,
                ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
                ["config"] = new { mediaType = "application/vnd.oci.empty.v1+json", digest = emptyDigest, size = 2 },
                ["layers"] = new[]
                {
                    new Dictionary<string, object> { ["mediaType"] = "application/octet-stream", ["digest"] = digest, ["size"] = payload.Length,
                        ["annotations"] = new Dictionary<string, string> { ["org.opencontainers.image.title"] = title } },
                },
            });
            var put = await http.PutAsync("manifests/bad", new StringContent(manifest, null, "application/vnd.oci.image.manifest.v1+json"));
            Assert.Equal(HttpStatusCode.Created, put.StatusCode);
            string target = dir["inner/target"];
            var e = await Assert.ThrowsAsync<RegistryException>(() =>
                ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("evil/chain:bad"), Folder = target }, registry.Options()));
            Assert.Contains($"'{title}' is not a plain file name", e.Message);
            Assert.Empty(Directory.GetFiles(dir.Path, "*", SearchOption.AllDirectories));
        }
    }

    [SkippableFact]
    public async Task Pull_keeps_files_present_with_the_right_digest_and_replaces_changed_ones()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 6, 5000, 6000);
        await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("keep/test:v1") }, registry.Options());
        string target = dir["target"];
        await ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("keep/test:v1"), Folder = target }, registry.Options());
        File.WriteAllText(Path.Combine(target, "layer1.qcow2"), "changed");
        var keptTime = File.GetLastWriteTimeUtc(Path.Combine(target, "layer0.qcow2"));

        var again = await ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("keep/test:v1"), Folder = target }, registry.Options());
        Assert.Equal(new[] { "layer0.qcow2", "chain.json" }, again.Skipped);
        Assert.Equal(new[] { "layer1.qcow2" }, again.Replaced);
        Assert.Empty(again.Written);
        Assert.Equal(6000, again.BytesDownloaded);
        Assert.Equal(keptTime, File.GetLastWriteTimeUtc(Path.Combine(target, "layer0.qcow2")));
        Chains.AssertSameFiles(chain, target);
    }

    [SkippableFact]
    public async Task Mounting_from_another_repository_of_the_registry_uploads_nothing()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        string chain = Chains.Synthetic(dir["chain"], seed: 7, 5000, 6000);
        await ChainPush.RunAsync(new PushRequest { Folder = chain, Reference = registry.Ref("mount/source:v1") }, registry.Options());
        var mounted = QcowProcess.RunWith(null, "push", "--mount-from", "mount/source", chain, $"{registry.Host}/mount/target:v1");
        Assert.True(mounted.ExitCode == 0, mounted.ToString());
        Assert.Contains("0 blobs uploaded (0 B), 0 already present, 4 mounted", mounted.StdErr);
        var pulled = await ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("mount/target:v1"), Folder = dir["pulled"] }, registry.Options());
        Chains.AssertSameFiles(chain, dir["pulled"]);

        // A source that lacks the blobs is passed over for the next; where none has them, the blob is uploaded.
        var second = await ChainPush.RunAsync(new PushRequest
        {
            Folder = chain, Reference = registry.Ref("mount/second:v1"), MountFrom = ["mount/nothing-here", "mount/source"],
        }, registry.Options());
        Assert.Equal((0, 0, 4), (second.BlobsUploaded, second.BlobsSkipped, second.BlobsMounted));
        var none = await ChainPush.RunAsync(new PushRequest
        {
            Folder = chain, Reference = registry.Ref("mount/third:v1"), MountFrom = ["mount/nothing-here"],
        }, registry.Options());
        Assert.Equal((4, 0, 0), (none.BlobsUploaded, none.BlobsSkipped, none.BlobsMounted));
        await ChainPull.RunAsync(new PullRequest { Reference = registry.Ref("mount/third:v1"), Folder = dir["third"] }, registry.Options());
        Chains.AssertSameFiles(chain, dir["third"]);
    }

    [SkippableFact]
    public void Cli_errors_are_one_line_naming_the_reference()
    {
        var registry = fixture.Server;
        using var dir = new TempDir();
        var missing = QcowProcess.RunWith(null, "pull", $"{registry.Host}/no/such:tag", dir["out"]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Equal($"qcow: {registry.Host}/no/such:tag: no such manifest in the registry (404)", missing.StdErr.Trim());
        Assert.False(Directory.Exists(dir["out"]) && Directory.EnumerateFileSystemEntries(dir["out"]).Any());

        var bad = QcowProcess.RunWith(null, "push", dir.Path, "no-host-here");
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("not a valid reference: needs a registry host", bad.StdErr);
        var noChain = QcowProcess.RunWith(null, "push", dir.Path, $"{registry.Host}/x/y:z");
        Assert.Equal(1, noChain.ExitCode);
        Assert.Contains($"{Path.Combine(dir.Path, "chain.json")}: cannot read", noChain.StdErr);
    }

    private static async Task<string> UploadRawBlobAsync(HttpClient http, byte[] bytes)
    {
        string digest = "sha256:" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        var start = await http.PostAsync("blobs/uploads/", null);
        Assert.Equal(HttpStatusCode.Accepted, start.StatusCode);
        var location = start.Headers.Location!;
        if (!location.IsAbsoluteUri) location = new Uri(http.BaseAddress!, location);
        string query = location.Query.TrimStart('?');
        var target = new UriBuilder(location) { Query = (query.Length > 0 ? query + "&" : "") + "digest=" + Uri.EscapeDataString(digest) }.Uri;
        var put = await http.PutAsync(target, new ByteArrayContent(bytes));
        Assert.Equal(HttpStatusCode.Created, put.StatusCode);
        return digest;
    }
}
