using Microsoft.Build.Framework;
using Qcow.Engine;
using Qcow.Engine.Operations;
using MSTask = Microsoft.Build.Utilities.Task;

namespace Qcow.Build.Tasks;

/// <summary>
/// What every Qcow task shares: one place that logs a failed step (<see cref="TaskFailure"/>: code, file, message),
/// cancellation (<see cref="ICancelableTask"/>) through a <see cref="CancellationToken"/> handed to the engine,
/// -question support (<see cref="IIncrementalTask"/>) and progress logging.
/// </summary>
public abstract class QcowTask : MSTask, ICancelableTask, IIncrementalTask
{
    private readonly CancellationTokenSource _cancel = new();

    /// <summary>Set by MSBuild under <c>-question</c>: report what would be written instead of writing it.</summary>
    public bool FailIfNotIncremental { get; set; }

    /// <summary>Cancelled by <see cref="Cancel"/>.</summary>
    protected CancellationToken CancellationToken => _cancel.Token;

    /// <inheritdoc />
    public void Cancel() => _cancel.Cancel();

    /// <inheritdoc />
    public sealed override bool Execute()
    {
        string? project = BuildEngine?.ProjectFileOfTaskNode;
        try
        {
            using var pause = TestPause.Install(Log, CancellationToken);
            ExecuteCore();
        }
        catch (TaskFailure f)
        {
            Error(f.Code, f.File ?? project, f.Message);
        }
        // The steps name their code and file (TaskFailure.Step); these only keep anything else from escaping as a stack trace.
        catch (OperationCanceledException)
        {
            Error(Codes.Cancelled, project, "cancelled; no partial output was left");
        }
        catch (QcowException e)
        {
            Error(Codes.ChainUnreadable, e.FilePath ?? project, e.Reason);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Error(Codes.IoError, project, e.Message);
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>The work; a failing step throws <see cref="TaskFailure"/> (see <see cref="TaskFailure.Step{T}"/>), logged once here.</summary>
    protected abstract void ExecuteCore();

    /// <summary>Logs <c>file: error CODE: message</c>.</summary>
    protected void Error(string code, string? file, string message) =>
        Log.LogError(null, code, null, file, 0, 0, 0, 0, message);

    /// <summary>Logs <c>file: warning CODE: message</c>.</summary>
    protected void Warning(string code, string? file, string message) =>
        Log.LogWarning(null, code, null, file, 0, 0, 0, 0, message);

    /// <summary>
    /// Outputs of at least this many bytes (virtual size) report their progress at high importance, so a long layer
    /// shows progress at the console's default verbosity (QcowProgressBytes); smaller ones at normal importance.
    /// </summary>
    public string? ProgressBytes { get; set; }

    /// <summary>A progress callback that logs each output's progress about every 10%.</summary>
    protected Action<ProgressInfo> Progress()
    {
        long threshold = long.TryParse(ProgressBytes, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long t) ? t : 256L << 20;
        var gate = new object();
        string stage = "";
        int lastDecile = -1;
        return p =>
        {
            lock (gate)
            {
                if (p.Stage != stage) { stage = p.Stage; lastDecile = -1; }
                int decile = p.Total <= 0 ? 10 : (int)(10 * p.Done / p.Total);
                if (decile <= lastDecile) return;
                lastDecile = decile;
                Log.LogMessage(p.Total >= threshold ? MessageImportance.High : MessageImportance.Normal, $"  {p.Stage}: {decile * 10}% of {Mib(p.Total)}");
            }
        };
    }

    /// <summary>Bytes as MiB with two decimals.</summary>
    protected static string Mib(long bytes) => $"{bytes / 1048576.0:0.##} MiB";
}
