using System.Reflection;
using System.Runtime.CompilerServices;
using Microsoft.Build.Locator;

namespace Qcow.Build.Tests.Support;

/// <summary>Paths of the repository under test, and MSBuild registration.</summary>
public static class Repo
{
    /// <summary>Registers the installed .NET SDK's MSBuild before any MSBuild type is touched.</summary>
    [ModuleInitializer]
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Usage", "CA2255", Justification = "MSBuildLocator must run before MSBuild types load.")]
    internal static void RegisterMSBuild()
    {
        if (!MSBuildLocator.IsRegistered) MSBuildLocator.RegisterDefaults();
    }

    /// <summary>The repository root (the folder of Qcow.Build.Sdk.sln).</summary>
    public static string Root { get; } = FindRoot();

    /// <summary>The configuration the tests were built in (the tasks and SDK are built in the same one).</summary>
    public static string Configuration { get; } =
        typeof(Repo).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().First(a => a.Key == "Configuration").Value!;

    /// <summary>The freshly built task assembly.</summary>
    public static string TasksAssembly => Path.Combine(Root, "src", "Qcow.Build.Tasks", "bin", Configuration, "net10.0", "Qcow.Build.Tasks.dll");

    /// <summary>The SDK's Sdk folder (Sdk.props, Sdk.targets) in the source tree.</summary>
    public static string SdkFolder => Path.Combine(Root, "sdk", "Qcow.Build.Sdk", "Sdk");

    private static string FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Qcow.Build.Sdk.sln"))) return d.FullName;
        throw new InvalidOperationException("Qcow.Build.Sdk.sln not found above " + AppContext.BaseDirectory);
    }
}
