using Qcow.Oci;

namespace Qcow.Testing.Registry;

/// <summary>
/// The programs the registry tests need. <see cref="Require"/> skips a test with a visible reason when one is
/// missing, and fails it instead when QCOW_REQUIRE_QEMU=1 (as in CI, which installs them).
/// </summary>
public static class Tools
{
    /// <summary>True when CI demands every external tool.</summary>
    public static bool Required => Environment.GetEnvironmentVariable("QCOW_REQUIRE_QEMU") == "1";

    /// <summary>Skips (or, in CI, fails) the calling test unless every program named is on PATH.</summary>
    public static void Require(params string[] programs)
    {
        var missing = programs.Where(p => Find(p) is null).ToList();
        if (missing.Count == 0) return;
        string reason = $"{string.Join(", ", missing)} not installed (apt-get install -y docker-registry apache2-utils jq)";
        if (Required) throw new InvalidOperationException($"QCOW_REQUIRE_QEMU=1 but {reason}");
        Skip.If(true, reason);
    }

    /// <summary>The full path of a program on PATH, or null.</summary>
    public static string? Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}
