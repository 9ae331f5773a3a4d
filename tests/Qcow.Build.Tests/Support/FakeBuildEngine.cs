using System.Collections;
using Microsoft.Build.Framework;

namespace Qcow.Build.Tests.Support;

/// <summary>A minimal IBuildEngine for running a task directly; calls <see cref="OnMessage"/> for each message.</summary>
internal sealed class FakeBuildEngine(string projectFile) : IBuildEngine
{
    /// <summary>Errors logged.</summary>
    public List<BuildErrorEventArgs> Errors { get; } = [];
    /// <summary>Messages logged.</summary>
    public List<string> Messages { get; } = [];
    /// <summary>Called for each message (e.g. to cancel the task at its first progress report).</summary>
    public Action<string>? OnMessage { get; set; }

    /// <inheritdoc />
    public bool ContinueOnError => false;
    /// <inheritdoc />
    public int LineNumberOfTaskNode => 0;
    /// <inheritdoc />
    public int ColumnNumberOfTaskNode => 0;
    /// <inheritdoc />
    public string ProjectFileOfTaskNode => projectFile;

    /// <inheritdoc />
    public bool BuildProjectFile(string projectFileName, string[] targetNames, IDictionary globalProperties, IDictionary targetOutputs) => false;
    /// <inheritdoc />
    public void LogCustomEvent(CustomBuildEventArgs e) { }
    /// <inheritdoc />
    public void LogErrorEvent(BuildErrorEventArgs e) { lock (Errors) Errors.Add(e); }
    /// <inheritdoc />
    public void LogMessageEvent(BuildMessageEventArgs e)
    {
        lock (Messages) Messages.Add(e.Message ?? "");
        OnMessage?.Invoke(e.Message ?? "");
    }
    /// <inheritdoc />
    public void LogWarningEvent(BuildWarningEventArgs e) { }
}
