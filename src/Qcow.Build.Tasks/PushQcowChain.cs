using System.Globalization;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;
using Qcow.Oci;

namespace Qcow.Build.Tasks;

/// <summary>
/// Pushes each chain of the project (its chain.json folder) to an OCI registry as one artifact, through
/// <see cref="ChainPush"/>, and logs <c>NAME -> host/repository@sha256:…</c>. Blobs the registry already has are not
/// uploaded, so pushing an unchanged chain again uploads nothing. Credentials come from the environment or docker's
/// config.json, as for <c>qcow push</c>.
/// </summary>
public sealed class PushQcowChain : QcowTask
{
    /// <summary>The project name (MSBuildProjectName), for the output line.</summary>
    [Required] public string ProjectName { get; set; } = "";

    /// <summary>The project file (MSBuildProjectFullPath), named by errors about its properties; default: the file of the task's node.</summary>
    public string? ProjectFile { get; set; }

    /// <summary>The registry, <c>host[:port]</c> (QcowRegistry).</summary>
    [Required] public string Registry { get; set; } = "";

    /// <summary>The repository of a chain without <c>Repository</c> metadata (QcowRepository).</summary>
    [Required] public string Repository { get; set; } = "";

    /// <summary>The tags (QcowImageTags); none means <c>latest</c>.</summary>
    public string[] Tags { get; set; } = [];

    /// <summary>Registries reached over plain HTTP although not on a loopback address (QcowInsecureRegistries).</summary>
    public string[] InsecureRegistries { get; set; } = [];

    /// <summary>Blobs uploaded at the same time, 1 to 64 (QcowMaxConcurrentUploads; <c>RegistryOptions.MaxConcurrentUploads</c> and <c>MostConcurrentUploads</c>).</summary>
    public string MaxConcurrentUploads { get; set; } = "3";

    /// <summary>The resolved chains (QcowResolvedChain: ChainJson, optional Repository).</summary>
    public ITaskItem[] Chains { get; set; } = [];

    /// <summary>Single exports of the project: not chains, so not pushed; each is named in a warning.</summary>
    public ITaskItem[] Exports { get; set; } = [];

    /// <summary>One item per pushed chain: the pinned reference, with Registry, Repository, Digest, Tags, BlobsUploaded, BlobsSkipped, BlobsMounted, BytesUploaded, ChainJson.</summary>
    [Output] public ITaskItem[] PushedImages { get; private set; } = [];

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        foreach (var export in Exports)
            Warning(Codes.ExportNotPushed, export.GetMetadata(ItemMetadata.FullPath), "a single export is not a chain and is not pushed to the registry");

        // The bound is qcow push --concurrency's: more connections than that only crowd the registry.
        if (!int.TryParse(MaxConcurrentUploads.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int concurrent) || concurrent is < 1 or > RegistryOptions.MostConcurrentUploads)
        {
            Error(Codes.InvalidOption, ProjectFile ?? BuildEngine?.ProjectFileOfTaskNode, $"QcowMaxConcurrentUploads '{MaxConcurrentUploads}': use a number from 1 to {RegistryOptions.MostConcurrentUploads}");
            return;
        }
        string registry = Registry.Trim().TrimEnd('/');
        var tags = Tags.Select(t => t.Trim()).Where(t => t.Length > 0).Distinct(StringComparer.Ordinal).ToList();
        var options = new RegistryOptions
        {
            InsecureRegistries = [.. InsecureRegistries.Select(r => r.Trim()).Where(r => r.Length > 0)],
            MaxConcurrentUploads = concurrent,
            Progress = Progress(),
        };

        // Two chains under one repository would overwrite each other's tags: refused before anything is sent.
        var byRepository = new Dictionary<string, string>(StringComparer.Ordinal);
        var requests = new List<(ITaskItem Chain, PushRequest Request)>();
        foreach (var chain in Chains)
        {
            string chainJson = chain.GetMetadata(ItemMetadata.ChainJson);
            string repository = chain.GetMetadata(ItemMetadata.Repository) is { Length: > 0 } own ? own.Trim() : Repository.Trim();
            if (byRepository.TryGetValue(repository, out var other))
            {
                Error(Codes.OutputClash, chainJson, $"{other} and {chainJson} would both be pushed to {registry}/{repository}; give one of the QcowChain items other Repository metadata");
                return;
            }
            byRepository[repository] = chainJson;
            string text = $"{registry}/{repository}{(tags.Count > 0 ? ":" + tags[0] : "")}";
            requests.Add((chain, new PushRequest
            {
                Folder = Path.GetDirectoryName(chainJson)!,
                Reference = TaskFailure.Step(Codes.PushFailed, text, () => ImageReference.Parse(text)),
                Tags = tags.Skip(1).ToList(),
            }));
        }

        var pushed = new List<ITaskItem>();
        foreach (var (chain, request) in requests)
        {
            string reference = request.Reference.ToString();
            var result = TaskFailure.Step(Codes.PushFailed, reference, () =>
            {
                try
                {
                    return ChainPush.RunAsync(request, options, CancellationToken).GetAwaiter().GetResult();
                }
                catch (RegistryException e) when (e.FilePath != reference && !File.Exists(e.FilePath))
                {
                    // The library names the blob or the reference it was at; the build names the reference pushed to.
                    throw new TaskFailure(Codes.PushFailed, reference, e.FilePath is null ? e.Reason : $"{e.FilePath}: {e.Reason}");
                }
            });
            Log.LogMessage(MessageImportance.High,
                $"{ProjectName} -> {result.Pinned} (tags {string.Join(", ", result.Tags)}; {SummarizeQcowImages.Count(result.BlobsUploaded, "blob")} uploaded, "
                + $"{Mib(result.BytesUploaded)}; {result.BlobsSkipped} already present, {result.BlobsMounted} mounted)");
            var item = new TaskItem(result.Pinned.ToString());
            item.SetMetadata(ItemMetadata.Registry, result.Reference.Registry);
            item.SetMetadata(ItemMetadata.Repository, result.Reference.Repository);
            item.SetMetadata(ItemMetadata.Digest, result.Digest);
            item.SetMetadata(ItemMetadata.Tags, string.Join(";", result.Tags));
            item.SetMetadata(ItemMetadata.BlobsUploaded, result.BlobsUploaded.ToString(CultureInfo.InvariantCulture));
            item.SetMetadata(ItemMetadata.BlobsSkipped, result.BlobsSkipped.ToString(CultureInfo.InvariantCulture));
            item.SetMetadata(ItemMetadata.BlobsMounted, result.BlobsMounted.ToString(CultureInfo.InvariantCulture));
            item.SetMetadata(ItemMetadata.BytesUploaded, result.BytesUploaded.ToString(CultureInfo.InvariantCulture));
            item.SetMetadata(ItemMetadata.ChainJson, chain.GetMetadata(ItemMetadata.ChainJson));
            pushed.Add(item);
        }
        PushedImages = [.. pushed];
    }
}
