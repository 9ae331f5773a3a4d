using Microsoft.Build.Framework;
using Qcow.Engine;
using Qcow.Engine.Operations;
using MSTask = Microsoft.Build.Utilities.Task;

namespace Qcow.Build.Tasks;

/// <summary>
/// What every Qcow task shares: error codes that name the file, cancellation (<see cref="ICancelableTask"/>) through a
/// <see cref="CancellationToken"/> handed to the engine, -question support (<see cref="IIncrementalTask"/>) and
/// progress logging.
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
        try
        {
            ExecuteCore();
        }
        catch (OperationCanceledException)
        {
            Error(Codes.Cancelled, CurrentFile ?? BuildEngine?.ProjectFileOfTaskNode, "cancelled; no partial output was left");
        }
        catch (QcowException e)
        {
            Error(CurrentCode, e.FilePath ?? CurrentFile ?? BuildEngine?.ProjectFileOfTaskNode, e.Reason);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Error(Codes.IoError, CurrentFile ?? BuildEngine?.ProjectFileOfTaskNode, e.Message);
        }
        return !Log.HasLoggedErrors;
    }

    /// <summary>The work; engine errors escape as <see cref="QcowException"/> and are logged with <see cref="CurrentCode"/>.</summary>
    protected abstract void ExecuteCore();

    /// <summary>The code an escaping <see cref="QcowException"/> is logged with.</summary>
    protected string CurrentCode { get; set; } = Codes.ChainUnreadable;

    /// <summary>The file an error is about when the exception does not say.</summary>
    protected string? CurrentFile { get; set; }

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
