using Microsoft.Build.Framework;
using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Engine.Format;
using Qcow.Engine.Writing;

namespace Qcow.Build.Tasks;

/// <summary>Turns item metadata and properties into engine options. No format logic: parsing is the engine's.</summary>
internal static class Settings
{
    /// <summary>Write options from <c>ClusterSize</c> (e.g. 65536, 64k), <c>Compat</c> (1.1, 0.10) and <c>Compression</c> (none, zlib, zstd).</summary>
    public static WriteOptions Options(string? clusterSize, string? compat, string? compression)
    {
        var parts = new List<string>();
        if (!string.IsNullOrWhiteSpace(clusterSize)) parts.Add($"cluster_size={clusterSize.Trim()}");
        if (!string.IsNullOrWhiteSpace(compat)) parts.Add($"compat={compat.Trim()}");
        bool compress = false;
        switch (compression?.Trim().ToLowerInvariant())
        {
            case null or "" or "none" or "false":
                break;
            case "zlib" or "deflate" or "true":
                compress = true;
                parts.Add("compression_type=zlib");
                break;
            case "zstd":
                compress = true;
                parts.Add("compression_type=zstd");
                break;
            default:
                throw new QcowException(null, $"Compression '{compression}': use none, zlib or zstd");
        }
        return WriteOptions.Default.With(string.Join(',', parts)) with { Compress = compress };
    }

    /// <summary>The canonical text of write options (goes into stamps and metadata).</summary>
    public static string Describe(WriteOptions o) =>
        $"cluster_size={o.ClusterSize},compat={CompatText(o)},compression={CompressionText(o)}";

    /// <summary>"1.1" or "0.10".</summary>
    public static string CompatText(WriteOptions o) => o.Version == 3 ? "1.1" : "0.10";

    /// <summary>"none", "zlib" or "zstd".</summary>
    public static string CompressionText(WriteOptions o) =>
        !o.Compress ? "none" : o.CompressionType == CompressionType.Zstd ? "zstd" : "zlib";

    /// <summary>Splits a list given as <c>a;b</c> or <c>a,b</c>.</summary>
    public static string[] List(string? text) =>
        string.IsNullOrWhiteSpace(text) ? [] : text.Split([';', ',', '|'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Full paths of a path list, relative ones taken from <paramref name="baseDir"/>.</summary>
    public static string[] FullPaths(string? text, string baseDir) =>
        List(text).Select(p => Path.GetFullPath(Path.Combine(baseDir, FixPath(p)))).ToArray();

    /// <summary>
    /// A path from a project with its backslashes turned into the platform's separator, as MSBuild's own tasks do
    /// (<c>OutDir</c> is <c>bin\Debug\</c> in every project): no file or folder is ever named with a backslash.
    /// </summary>
    public static string FixPath(string path) =>
        Path.DirectorySeparatorChar == '\\' ? path : path.Replace('\\', Path.DirectorySeparatorChar);

    /// <summary>The backing policy: the engine's default plus allowed paths; warnings go to <paramref name="warn"/> (null: dropped).</summary>
    public static BackingPolicy Policy(IReadOnlyList<string> allowed, Action<QcowWarning>? warn) =>
        new() { AllowedPaths = allowed, Warning = warn };

    /// <summary>The metadata value, or the default when empty.</summary>
    public static string Meta(ITaskItem item, string name, string? fallback = null)
    {
        string v = item.GetMetadata(name);
        return string.IsNullOrWhiteSpace(v) ? fallback ?? "" : v.Trim();
    }

    /// <summary>The project file that defined an item (for errors about its metadata).</summary>
    public static string? DefiningProject(ITaskItem item, IBuildEngine? engine)
    {
        string p = item.GetMetadata(ItemMetadata.DefiningProjectFullPath);
        return string.IsNullOrEmpty(p) ? engine?.ProjectFileOfTaskNode : p;
    }
}
