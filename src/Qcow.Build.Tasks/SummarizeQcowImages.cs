using Microsoft.Build.Framework;

namespace Qcow.Build.Tasks;

/// <summary>
/// Logs the project's output line, <c>NAME -> FOLDER (7 layers, 12.5 MiB, 2 rewritten)</c>, at high importance: the
/// form the terminal logger shows as the project's output, and one line at the console's default verbosity.
/// </summary>
public sealed class SummarizeQcowImages : QcowTask
{
    /// <summary>The project name (MSBuildProjectName).</summary>
    [Required] public string ProjectName { get; set; } = "";

    /// <summary>The output folder (QcowOutputDir).</summary>
    [Required] public string OutputDir { get; set; } = "";

    /// <summary>The produced images (QcowImage: Kind Layer or Snapshot).</summary>
    public ITaskItem[] Images { get; set; } = [];

    /// <summary>The outputs this build wrote.</summary>
    public ITaskItem[] Written { get; set; } = [];

    /// <inheritdoc />
    protected override void ExecuteCore()
    {
        string dir = Path.GetFullPath(Settings.FixPath(OutputDir));
        int layers = Images.Count(i => i.GetMetadata(ItemMetadata.Kind) == ItemMetadata.KindLayer);
        int exports = Images.Length - layers;
        long bytes = Images.Select(i => new FileInfo(i.GetMetadata(ItemMetadata.FullPath))).Where(f => f.Exists).Sum(f => f.Length);
        int written = Written.Select(w => w.GetMetadata(ItemMetadata.FullPath)).Distinct(StringComparer.Ordinal).Count();
        string what = (layers, exports) switch
        {
            (_, 0) => Count(layers, "layer"),
            (0, _) => Count(exports, "export"),
            _ => $"{Count(layers, "layer")} + {Count(exports, "export")}",
        };
        Log.LogMessage(MessageImportance.High, $"{ProjectName} -> {Folder(dir)} ({what}, {Mib(bytes)}, {written} rewritten)");
    }

    /// <summary>"1 layer", "7 layers".</summary>
    internal static string Count(int n, string noun) => $"{n} {noun}{(n == 1 ? "" : "s")}";

    /// <summary>A folder path ending in a separator (as MSBuild prints output folders).</summary>
    internal static string Folder(string path) => Path.EndsInDirectorySeparator(path) ? path : path + Path.DirectorySeparatorChar;
}
