using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace Qcow.Build.Tasks;

/// <summary>
/// The input stamps of one resolve call, held until every item is resolved without error (one bad item or clash
/// stops the build before any stamp, and so any output, is written), then written together.
/// </summary>
internal sealed class PendingStamps
{
    private readonly List<(string Path, Stamp Stamp, string Output)> _stamps = [];

    /// <summary>Every stamp file, written or not (for FileWrites).</summary>
    public IEnumerable<string> Paths => _stamps.Select(s => s.Path);

    /// <summary>Holds the stamp of <paramref name="output"/> at <paramref name="path"/>; returns its work item.</summary>
    public TaskItem Add(string path, Stamp stamp, string output)
    {
        _stamps.Add((path, stamp, output));
        return new TaskItem(path);
    }

    /// <summary>
    /// Writes each stamp whose text changed. Under -question (<paramref name="question"/>) writes none and returns the
    /// outputs they would make out of date; otherwise returns none.
    /// </summary>
    public IReadOnlyList<string> Write(bool question, TaskLoggingHelper log)
    {
        var stale = new List<string>();
        foreach (var (path, stamp, output) in _stamps)
        {
            if (stamp.IsCurrent(path))
            {
                // Same text, output completed from it, but the stamp looks newer: the folder was copied without times.
                if (stamp.BuiltFrom(path, output) && File.GetLastWriteTimeUtc(path) > File.GetLastWriteTimeUtc(output))
                    File.SetLastWriteTimeUtc(path, File.GetLastWriteTimeUtc(output));
                continue;
            }
            if (question)
            {
                stale.Add(output);
                continue;
            }
            TaskFailure.Step(Codes.IoError, path, () => stamp.Write(path));
            log.LogMessage(MessageImportance.Low, $"Wrote input stamp {path}");
        }
        return stale;
    }
}
