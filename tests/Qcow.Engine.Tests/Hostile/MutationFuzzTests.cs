using System.Globalization;
using Qcow.Testing;
using Xunit.Abstractions;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// The mutation fuzzer: for a budget of iterations (QCOW_FUZZ_ITERATIONS, 3000 in CI, 500 by default elsewhere; a count,
/// not a time, so a loaded machine runs the same mutants, only slower) it damages the base images at random (seed QCOW_FUZZ_SEED, default 1) and runs each through the engine. Every run must end in a typed
/// error or a read, within <see cref="Exerciser.TimeBound"/>; a read of the current state must equal qemu's read
/// whenever qemu can read the image; the damaged file must be unchanged afterwards. Failing inputs are written to
/// QCOW_FUZZ_ARTIFACTS (default: fuzz-failures beside the test assembly) to be kept under Hostile/Regressions.
/// </summary>
public sealed class MutationFuzzTests(HostileImages bases, ITestOutputHelper output) : IClassFixture<HostileImages>
{
    private static int BudgetIterations =>
        int.TryParse(Environment.GetEnvironmentVariable("QCOW_FUZZ_ITERATIONS"), NumberStyles.Integer, CultureInfo.InvariantCulture, out int n) ? n
        : Qemu.Required ? 3000 : 500;

    private static int Seed => int.TryParse(Environment.GetEnvironmentVariable("QCOW_FUZZ_SEED"), out int s) ? s : 1;

    [SkippableFact]
    [Trait("Category", "Slow")]
    public void Mutated_images_read_like_qemu_or_fail_typed_within_the_time_bound()
    {
        Qemu.Require();
        var originals = HostileImages.Kinds.ToDictionary(k => k, k => File.ReadAllBytes(bases.Base(k)));
        using var dir = new TempDir("fuzz-");
        var random = new Random(Seed);
        var counts = new Dictionary<string, int>();
        var failures = new List<string>();
        var notes = new List<string>();
        int iterations = 0;
        while (iterations < BudgetIterations && failures.Count < 5)
        {
            string kind = HostileImages.Kinds[random.Next(HostileImages.Kinds.Length)];
            var log = new List<string>();
            byte[] mutant = Mutator.Mutate((byte[])originals[kind].Clone(), random, log);
            string path = dir[$"mutant-{iterations % 4}.qcow2"];
            File.WriteAllBytes(path, mutant);
            string verdict = Judge(path, dir, out string? failure, out string? note);
            counts[verdict] = counts.GetValueOrDefault(verdict) + 1;
            // Where we read what qemu refuses, say so: a place to look for a check we lack.
            if (note is not null && notes.Count < 10) notes.Add($"iteration {iterations} ({kind}: {string.Join("; ", log)}): {note}");
            if (failure is not null)
            {
                string saved = Keep(mutant, $"{kind}-seed{Seed}-iter{iterations}", failure, log);
                failures.Add($"iteration {iterations} ({kind}: {string.Join("; ", log)}): {failure} (saved as {saved})");
            }
            iterations++;
        }
        output.WriteLine($"fuzz: seed {Seed}, {iterations} iterations; " +
            string.Join(", ", counts.OrderBy(c => c.Key).Select(c => $"{c.Key} {c.Value}")) + $"; failures {failures.Count}");
        foreach (var n in notes) output.WriteLine(n);
        Assert.True(iterations > 0, "the fuzzer ran no iteration");
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    /// <summary>Runs one input; returns the outcome's name and sets <paramref name="failure"/> when it is a bug.</summary>
    public static string Judge(string path, TempDir dir, out string? failure, out string? note)
    {
        failure = null;
        note = null;
        string before = FileHash.Sha256(path);
        var outcome = Exerciser.Run(path);
        string verdict = outcome.Kind.ToString();
        switch (outcome.Kind)
        {
            case OutcomeKind.Crash:
            case OutcomeKind.Hang:
                failure = outcome.ToString();
                break;
            case OutcomeKind.TypedError when !outcome.Error!.Message.Contains(path, StringComparison.Ordinal):
                failure = $"the error does not name the file: {outcome.Error.Message}";
                break;
            case OutcomeKind.Read when outcome.CurrentState is not null:
                string raw = dir["qemu.raw"];
                File.Delete(raw);
                // qemu-img may loop on a mutant: it gets 30 s of CPU time (prlimit, util-linux), then SIGKILL (137). A
                // CPU-time bound, not a clock: a loaded machine slows qemu-img down without bringing it nearer the bound.
                var r = Qemu.Run("prlimit", ["--cpu=30", "--", "qemu-img", "convert", "-U", "-O", "raw", path, raw], [0, 1, 137]);
                if (r.ExitCode == 137) return "Read, qemu hung";
                if (r.ExitCode != 0)
                {
                    note = $"we read it, qemu-img convert fails: {r.StdErr.Trim()}";
                    return "Read, qemu failed";
                }
                if (!File.ReadAllBytes(raw).AsSpan().SequenceEqual(outcome.CurrentState))
                    failure = "our read of the current state differs from qemu-img convert's";
                verdict = "Read, same as qemu";
                break;
        }
        if (FileHash.Sha256(path) != before) failure ??= "the source file was modified";
        return verdict;
    }

    private static string Keep(byte[] mutant, string name, string failure, List<string> log)
    {
        string folder = Environment.GetEnvironmentVariable("QCOW_FUZZ_ARTIFACTS") ?? Path.Combine(AppContext.BaseDirectory, "fuzz-failures");
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, name + ".qcow2");
        File.WriteAllBytes(path, mutant);
        File.WriteAllLines(Path.Combine(folder, name + ".txt"), [failure, .. log]);
        return path;
    }
}
