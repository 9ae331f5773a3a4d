using Microsoft.Build.Framework;

namespace Qcow.Build.Tests.Support;

/// <summary>Collects what a build logged: errors, warnings, messages, and which targets ran or were skipped.</summary>
internal sealed class BuildLog : ILogger
{
    private readonly object _gate = new();

    /// <summary>Errors.</summary>
    public List<BuildErrorEventArgs> Errors { get; } = [];
    /// <summary>Warnings.</summary>
    public List<BuildWarningEventArgs> Warnings { get; } = [];
    /// <summary>Messages of every importance.</summary>
    public List<BuildMessageEventArgs> Messages { get; } = [];
    /// <summary>Targets whose bodies ran (TargetStarted not followed by a skip).</summary>
    public List<string> TargetsStarted { get; } = [];
    /// <summary>Targets skipped, with the reason.</summary>
    public List<TargetSkippedEventArgs> TargetsSkipped { get; } = [];

    /// <inheritdoc />
    public LoggerVerbosity Verbosity { get; set; } = LoggerVerbosity.Diagnostic;
    /// <inheritdoc />
    public string? Parameters { get; set; }

    /// <inheritdoc />
    public void Initialize(IEventSource eventSource)
    {
        eventSource.ErrorRaised += (_, e) => { lock (_gate) Errors.Add(e); };
        eventSource.WarningRaised += (_, e) => { lock (_gate) Warnings.Add(e); };
        eventSource.MessageRaised += (_, e) =>
        {
            lock (_gate)
            {
                if (e is TargetSkippedEventArgs s) TargetsSkipped.Add(s);
                else Messages.Add(e);
            }
        };
        eventSource.TargetStarted += (_, e) => { lock (_gate) TargetsStarted.Add(e.TargetName); };
    }

    /// <inheritdoc />
    public void Shutdown() { }

    /// <summary>Everything logged, for assertion messages.</summary>
    public string Text
    {
        get
        {
            lock (_gate)
                return string.Join('\n', Errors.Select(e => $"{e.File}: error {e.Code}: {e.Message}")
                    .Concat(Warnings.Select(w => $"{w.File}: warning {w.Code}: {w.Message}"))
                    .Concat(Messages.Where(m => m.Importance <= MessageImportance.Normal).Select(m => m.Message)));
        }
    }
}
