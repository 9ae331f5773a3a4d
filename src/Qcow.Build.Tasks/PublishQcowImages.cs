using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Qcow.Build.Tasks;

/// <summary>
/// Copies the produced images and chain.json files into the publish folder, keeping their layout below the output
/// folder. Incremental: a file whose copy has the same size and last write time is not copied again (a copy takes its
/// source's time, so a rewritten source always differs). Each copy appears complete (temporary file, then rename).
/// </summary>
public sealed class PublishQcowImages : QcowTask
{
    /// <summary>The project name (MSBuildProjectName), for the output line.</summary>
    [Required] public string ProjectName { get; set; } = "";

    /// <summary>The files to publish (layers, exports, chain.json).</summary>
    public ITaskItem[] Files { get; set; } = [];

    /// <summary>The output folder the files are in (QcowOutputDir): their path below it is kept.</summary>
    [Required] public string OutputDir { get; set; } = "";

    /// <summary>The publish folder (PublishDir, or <c>dotnet publish -o</c>).</summary>
    [Required] public string PublishDir { get; set; } = "";

    /// <summary>Every file in the publish folder, copied or already there.</summary>
    [Output] public ITaskItem[] Published { get; private set; } = [];

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        string outDir = SummarizeQcowImages.Folder(Path.GetFullPath(Settings.FixPath(OutputDir)));
        string publishDir = SummarizeQcowImages.Folder(Path.GetFullPath(Settings.FixPath(PublishDir)));
        var targets = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var source in Files.Select(f => f.GetMetadata(ItemMetadata.FullPath)).Distinct(StringComparer.Ordinal))
        {
            string relative = source.StartsWith(outDir, StringComparison.Ordinal) ? source[outDir.Length..] : Path.GetFileName(source);
            string target = Path.Combine(publishDir, relative);
            if (targets.TryGetValue(target, out var other))
            {
                Error(Codes.OutputClash, target, $"{other} and {source} would both be published as {target}; give one of them another OutputDir");
                return;
            }
            targets[target] = source;
        }

        int copied = 0;
        var published = new List<ITaskItem>();
        foreach (var (target, source) in targets)
        {
            CancellationToken.ThrowIfCancellationRequested();
            var from = new FileInfo(source);
            var to = new FileInfo(target);
            if (!(to.Exists && to.Length == from.Length && to.LastWriteTimeUtc == from.LastWriteTimeUtc))
            {
                TaskFailure.Step(Codes.WriteFailed, target, () =>
                {
                    Directory.CreateDirectory(to.DirectoryName!);
                    string temp = Path.Combine(to.DirectoryName!, $".{to.Name}.publish-tmp-{Environment.ProcessId}");
                    try
                    {
                        File.Copy(source, temp, overwrite: true);
                        File.SetLastWriteTimeUtc(temp, from.LastWriteTimeUtc);
                        File.Move(temp, target, overwrite: true);
                    }
                    finally
                    {
                        File.Delete(temp);
                    }
                });
                Log.LogMessage(MessageImportance.Normal, $"  published {source} -> {target}");
                copied++;
            }
            var item = new TaskItem(target);
            item.SetMetadata(ItemMetadata.SourceFile, source);
            published.Add(item);
        }
        Published = [.. published];
        Log.LogMessage(MessageImportance.High,
            $"{ProjectName} -> {publishDir} ({SummarizeQcowImages.Count(targets.Count, "file")}: {copied} copied, {targets.Count - copied} unchanged)");
    }
}
