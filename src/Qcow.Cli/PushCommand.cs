using System.CommandLine;
using Qcow.Oci;

namespace Qcow.Cli;

/// <summary><c>qcow push [-t TAG]... [--mount-from REPO]... [--chunk-size SIZE] [--concurrency N] DIR REF</c>: a chain folder as one OCI artifact.</summary>
internal static class PushCommand
{
    public static Command Create()
    {
        var shared = new RegistryArguments();
        var tags = new Option<string[]>("-t", "--tag") { Description = "Also tag the artifact TAG. Repeatable.", HelpName = "TAG", AllowMultipleArgumentsPerToken = false };
        var mount = new Option<string[]>("--mount-from") { Description = "Mount blobs the registry holds in this repository instead of uploading them. Repeatable.", HelpName = "REPOSITORY" };
        var chunk = new Option<string>("--chunk-size") { Description = "Upload blobs larger than this in chunks of this size (default 64M).", HelpName = "SIZE" };
        var concurrency = new Option<int?>("--concurrency") { Description = "Upload at most N blobs at the same time (default 3).", HelpName = "N" };
        var dir = new Argument<string>("DIR") { Description = "Folder holding chain.json and its layers." };
        var reference = new Argument<string>("REF") { Description = "host[:port]/repository[:tag] (tag default: latest)." };
        var cmd = new Command("push", "Push a chain folder (chain.json and its layers) to an OCI registry as one artifact; prints host/repository@sha256:….")
        {
            tags, mount, chunk, concurrency, dir, reference,
        };
        foreach (var o in shared.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var target = ImageReference.Parse(r.GetValue(reference)!);
            var options = shared.Options(r, target);
            if (r.GetValue(chunk) is { } size) options = options with { ChunkSize = RegistryArguments.ParseSize(size, "--chunk-size") };
            if (r.GetValue(concurrency) is { } n)
                options = options with { MaxConcurrentUploads = n is >= 1 and <= RegistryOptions.MostConcurrentUploads ? n
                    : throw new Engine.QcowException(null, $"--concurrency {n}: not a number from 1 to {RegistryOptions.MostConcurrentUploads}") };
            var request = new PushRequest
            {
                Folder = r.GetValue(dir)!,
                Reference = target,
                Tags = r.GetValue(tags) ?? [],
                MountFrom = r.GetValue(mount) ?? [],
            };
            var result = ChainPush.RunAsync(request, options, ConvertCommand.CancelOnCtrlC()).GetAwaiter().GetResult();
            Console.Error.WriteLine($"qcow: {result.BlobsUploaded} blobs uploaded ({Formats.Size(result.BytesUploaded)}), {result.BlobsSkipped} already present, "
                + $"{result.BlobsMounted} mounted; tags: {string.Join(", ", result.Tags)}");
            Console.WriteLine(result.Pinned);
            return 0;
        });
        return cmd;
    }
}
