using System.Diagnostics;
using System.Text;

namespace Qcow.Testing;

/// <summary>
/// Runs qemu-img and qemu-io, the oracle. Tests that need them call <see cref="Require"/>: it skips the test with a
/// visible reason when qemu-img is not installed, and fails it instead when QCOW_REQUIRE_QEMU=1 (as in CI).
/// </summary>
public static class Qemu
{
    private static readonly Lazy<string?> s_img = new(() => Find("qemu-img"));
    private static readonly Lazy<string?> s_io = new(() => Find("qemu-io"));

    /// <summary>True when CI demands the oracle.</summary>
    public static bool Required => Environment.GetEnvironmentVariable("QCOW_REQUIRE_QEMU") == "1";

    /// <summary>Skips (or, in CI, fails) the calling test when qemu-img or qemu-io is missing.</summary>
    public static void Require()
    {
        if (s_img.Value is not null && s_io.Value is not null) return;
        const string reason = "qemu-img/qemu-io not installed (apt-get install -y qemu-utils)";
        if (Required) throw new InvalidOperationException($"QCOW_REQUIRE_QEMU=1 but {reason}");
        Skip.If(true, reason);
    }

    /// <summary>Runs qemu-img; throws with its output when the exit code is not one of <paramref name="okCodes"/>.</summary>
    public static ProcessResult Img(params string[] args) => Run(s_img.Value ?? "qemu-img", args, [0]);

    /// <summary>Runs qemu-img accepting the given exit codes.</summary>
    public static ProcessResult ImgAllow(int[] okCodes, params string[] args) => Run(s_img.Value ?? "qemu-img", args, okCodes);

    /// <summary>Runs qemu-io commands on an image: each string is one -c command.</summary>
    public static ProcessResult Io(string image, params string[] commands)
    {
        var args = new List<string>();
        // Name the format so qemu-io does not probe (and warn about) raw files.
        args.Add("-f");
        args.Add(image.EndsWith(".raw", StringComparison.Ordinal) ? "raw" : "qcow2");
        foreach (var c in commands) { args.Add("-c"); args.Add(c); }
        args.Add(image);
        var r = Run(s_io.Value ?? "qemu-io", args.ToArray(), [0]);
        // qemu-io reports some failures on stdout with exit code 0.
        if (r.StdOut.Contains("failed", StringComparison.OrdinalIgnoreCase) || r.StdErr.Length > 0)
            throw new InvalidOperationException($"qemu-io {string.Join(' ', args)} failed:\n{r.StdOut}\n{r.StdErr}");
        return r;
    }

    /// <summary>
    /// qemu-img's full export of <paramref name="image"/> at <paramref name="snapshot"/> (null: its current state) to
    /// <paramref name="output"/> in <paramref name="format"/>: the oracle an exported state is compared with.
    /// </summary>
    public static string Export(string image, string? snapshot, string output, string format = "qcow2")
    {
        var args = new List<string> { "convert", "-O", format };
        if (snapshot is not null) { args.Add("-l"); args.Add($"snapshot.name={snapshot}"); }
        args.Add(image);
        args.Add(output);
        Img([.. args]);
        return output;
    }

    /// <summary>qemu-img compare; true when identical.</summary>
    public static bool Identical(string a, string b, bool strict = false)
    {
        var args = strict ? new[] { "compare", "-s", a, b } : new[] { "compare", a, b };
        var r = ImgAllow([0, 1], args);
        return r.ExitCode == 0;
    }

    /// <summary>Asserts qemu-img check finds the image clean (exit 0).</summary>
    public static void AssertClean(string image)
    {
        var r = ImgAllow([0, 1, 2, 3], "check", image);
        Assert.True(r.ExitCode == 0, $"qemu-img check {image} exit {r.ExitCode}:\n{r.StdOut}{r.StdErr}");
    }

    /// <summary>Asserts qemu-img compare finds the guest contents identical.</summary>
    public static void AssertIdentical(string expected, string actual)
    {
        var r = ImgAllow([0, 1], "compare", expected, actual);
        Assert.True(r.ExitCode == 0, $"qemu-img compare {expected} {actual}: {r.StdOut}{r.StdErr}");
    }

    /// <summary>Runs a program with arguments (no shell), capturing output.</summary>
    public static ProcessResult Run(string exe, string[] args, int[] okCodes, string? workingDirectory = null, TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string?>()) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout ?? TimeSpan.FromMinutes(5)))
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{exe} {string.Join(' ', args)} timed out");
        }
        var result = new ProcessResult(p.ExitCode, stdout.Result, stderr.Result);
        if (!okCodes.Contains(p.ExitCode))
            throw new InvalidOperationException($"{exe} {string.Join(' ', args)} exited {p.ExitCode}:\n{result.StdOut}\n{result.StdErr}");
        return result;
    }

    private static string? Find(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator))
        {
            string p = Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}

/// <summary>Exit code and output of a child process.</summary>
public sealed record ProcessResult(int ExitCode, string StdOut, string StdErr)
{
    /// <inheritdoc />
    public override string ToString() => $"exit {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}";
}
