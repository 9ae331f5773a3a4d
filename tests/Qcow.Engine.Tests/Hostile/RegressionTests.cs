using System.IO.Compression;
using Qcow.Testing;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>Replays every input under Hostile/Regressions (see its README): a read like qemu's, or a typed error.</summary>
public sealed class RegressionTests
{
    /// <summary>The gzipped regression inputs, by file name.</summary>
    public static IEnumerable<object[]> Inputs =>
        Directory.EnumerateFiles(Folder, "*.qcow2.gz").Order(StringComparer.Ordinal).Select(f => new object[] { Path.GetFileName(f) });

    /// <summary>The Regressions folder of the source tree (tests run from a clone, so it is there).</summary>
    public static string Folder
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "tests", "Qcow.Engine.Tests", "Hostile", "Regressions");
                if (Directory.Exists(candidate)) return candidate;
            }
            throw new DirectoryNotFoundException("tests/Qcow.Engine.Tests/Hostile/Regressions not found above " + AppContext.BaseDirectory);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(Inputs))]
    public void Regression_input_reads_like_qemu_or_fails_typed(string name)
    {
        Qemu.Require();
        using var dir = new TempDir("regression-");
        string path = dir[name[..^".gz".Length]];
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(Folder, name)), CompressionMode.Decompress))
        using (var f = File.Create(path))
            gz.CopyTo(f);
        string verdict = MutationFuzzTests.Judge(path, dir, out string? failure, out _);
        Assert.True(failure is null, $"{name}: {verdict}: {failure}");
    }
}
