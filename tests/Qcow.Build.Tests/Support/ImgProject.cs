using System.Xml.Linq;
using Microsoft.Build.Execution;
using Microsoft.Build.Evaluation;
using Microsoft.Build.Framework;

namespace Qcow.Build.Tests.Support;

/// <summary>The outcome of one in-process build.</summary>
internal sealed record BuildOutcome(bool Success, BuildLog Log, BuildResult Result)
{
    /// <summary>Whether a target's body ran.</summary>
    public bool Ran(string target) => Log.TargetsStarted.Contains(target) && !Skipped(target);

    /// <summary>Whether a target was skipped because its outputs are up to date.</summary>
    public bool Skipped(string target) => Log.TargetsSkipped.Any(s => s.TargetName == target && s.SkipReason == TargetSkipReason.OutputsUpToDate);

    /// <summary>The items a target returned.</summary>
    public ITaskItem[] Items(string target) => Result.ResultsByTarget.TryGetValue(target, out var r) ? r.Items : [];
}

/// <summary>
/// A generated .imgproj in a folder of its own, importing the SDK from the source tree and the freshly built tasks,
/// built in-process with the MSBuild API (one build at a time).
/// </summary>
internal sealed class ImgProject
{
    private static readonly object s_buildGate = new();
    private bool _restored;

    /// <summary>Creates the project file <paramref name="name"/> in <paramref name="folder"/> with the given body.</summary>
    public ImgProject(string folder, string body, string name = "images.imgproj")
    {
        Folder = folder;
        Path = System.IO.Path.Combine(folder, name);
        Write(body);
    }

    /// <summary>The project folder.</summary>
    public string Folder { get; }

    /// <summary>The project file.</summary>
    public string Path { get; }

    /// <summary>The output folder (bin/Debug/).</summary>
    public string OutDir => System.IO.Path.Combine(Folder, "bin", "Debug");

    /// <summary>A file in the output folder.</summary>
    public string Out(string name) => System.IO.Path.Combine(OutDir, name);

    /// <summary>Replaces the project body (the XML between the SDK imports).</summary>
    public void Write(string body)
    {
        var doc = XDocument.Parse($"""
            <Project>
              <Import Project="{System.IO.Path.Combine(Repo.SdkFolder, "Sdk.props")}" />
              {body}
              <Import Project="{System.IO.Path.Combine(Repo.SdkFolder, "Sdk.targets")}" />
            </Project>
            """);
        File.WriteAllText(Path, doc.ToString());
    }

    /// <summary>Builds targets (default Build) with global properties; <paramref name="question"/> is -question.</summary>
    public BuildOutcome Build(string targets = "Build", IDictionary<string, string>? properties = null, bool question = false)
    {
        var globals = new Dictionary<string, string>
        {
            ["QcowTasksAssembly"] = Repo.TasksAssembly,
            ["Configuration"] = "Debug",
        };
        foreach (var (k, v) in properties ?? new Dictionary<string, string>()) globals[k] = v;
        lock (s_buildGate)
        {
            if (!_restored)
            {
                var restoreGlobals = new Dictionary<string, string>(globals) { ["MSBuildRestoreSessionId"] = Guid.NewGuid().ToString("D") };
                var r = Run(restoreGlobals, ["Restore"], question: false);
                Assert.True(r.Success, "restore failed:\n" + r.Log.Text);
                _restored = true;
            }
            return Run(globals, targets.Split(';'), question);
        }
    }

    private BuildOutcome Run(Dictionary<string, string> globals, string[] targets, bool question)
    {
        var log = new BuildLog();
        using var collection = new ProjectCollection(globals);
        var parameters = new BuildParameters(collection)
        {
            Loggers = [log],
            EnableNodeReuse = false,
            DisableInProcNode = false,
            MaxNodeCount = 1,
            Question = question,
        };
        var request = new BuildRequestData(Path, globals!, null, targets, null,
            BuildRequestDataFlags.ClearCachesAfterBuild | BuildRequestDataFlags.ProvideProjectStateAfterBuild);
        var result = BuildManager.DefaultBuildManager.Build(parameters, request);
        return new BuildOutcome(result.OverallResult == BuildResultCode.Success, log, result);
    }
}
