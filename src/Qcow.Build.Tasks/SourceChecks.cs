using Microsoft.Build.Framework;

namespace Qcow.Build.Tasks;

/// <summary>
/// The checks of an item's source image before it is planned: it exists, its Format metadata is one the SDK takes, and
/// the image is what that metadata says. Each failed check is logged (through <paramref name="error"/>: code, file,
/// message) and answered false or null, so a resolve call reports every bad item before stopping.
/// </summary>
internal sealed class SourceChecks(Action<string, string?, string> error, IBuildEngine? engine)
{
    /// <summary>The source exists; otherwise QCOW0001 naming it and the item that asked for it.</summary>
    public bool Exists(string path, ITaskItem item, string what)
    {
        if (File.Exists(path)) return true;
        error(Codes.SourceNotFound, path, $"{what} not found: {path} (from {item.ItemSpec} in {Path.GetFileName(Settings.DefiningProject(item, engine))})");
        return false;
    }

    /// <summary>The item's Format metadata (how its source is taken): qcow2 (default) or raw; null after QCOW0004.</summary>
    public string? Format(ITaskItem item)
    {
        string format = Settings.Meta(item, ItemMetadata.Format, "qcow2").ToLowerInvariant();
        if (format is "qcow2" or "raw") return format;
        error(Codes.InvalidOption, Settings.DefiningProject(item, engine), $"{item.ItemSpec}: Format '{format}': use qcow2 (the default) or raw");
        return null;
    }

    /// <summary>A top image must be what its item says: qcow2 unless <c>Format="raw"</c> (a text file is not a disk).</summary>
    public bool FormatMatches(string path, string probed, string declared, ITaskItem item, string what)
    {
        if (probed == declared) return true;
        error(Codes.ChainUnreadable, path, declared == "qcow2"
            ? $"{what} is not a qcow2 image (no qcow2 header); if it is a raw disk, say so with Format=\"raw\" on {item.ItemSpec}"
            : $"{what} is a qcow2 image, but {item.ItemSpec} says Format=\"raw\"; remove Format or set it to qcow2");
        return false;
    }
}
