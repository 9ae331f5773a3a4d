using Qcow.Engine.Chain;

namespace Qcow.Engine.Operations;

/// <summary>Refuses outputs that would overwrite a source: inputs are never modified.</summary>
internal static class OutputGuard
{
    /// <summary>Throws when <paramref name="output"/> is one of the files of the opened chains.</summary>
    public static void RefuseOverwritingInputs(ImageSet set, string output) =>
        RefuseOverwritingInputs(set.OpenedPaths, output);

    /// <summary>Throws when <paramref name="output"/> is one of <paramref name="inputs"/> (symlinks resolved).</summary>
    public static void RefuseOverwritingInputs(IEnumerable<string> inputs, string output)
    {
        string target = PathPolicy.RealPath(Path.GetFullPath(output));
        foreach (var input in inputs)
        {
            if (string.Equals(PathPolicy.RealPath(input), target, OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase))
                throw new QcowException(output, $"output would overwrite the input {input}; sources are never modified: choose another output path");
        }
    }

    /// <summary>Throws when the output would be its own backing file.</summary>
    public static void RefuseBackingIsOutput(string output, string backing)
    {
        string folder = Path.GetDirectoryName(Path.GetFullPath(output))!;
        string resolved = Path.GetFullPath(Path.IsPathRooted(backing) ? backing : Path.Combine(folder, backing));
        if (resolved == Path.GetFullPath(output))
            throw new QcowException(output, "the output cannot be its own backing file");
    }
}
