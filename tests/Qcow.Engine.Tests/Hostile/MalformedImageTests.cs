using Qcow.Testing;
using static Qcow.Engine.Tests.Hostile.HostileImages;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// The malformed corpus (<see cref="MalformedCases"/>): each image gives exactly one typed error that names the file
/// and the field, from the engine and from the CLI (one line, non-zero exit, no output left), and the damaged source
/// is never modified. Damage qemu still reads gives the bytes qemu reads.
/// </summary>
public sealed class MalformedImageTests(HostileImages bases) : IClassFixture<HostileImages>
{
    [SkippableTheory]
    [MemberData(nameof(MalformedCases.Names), MemberType = typeof(MalformedCases))]
    public void Malformed_image_gives_one_typed_error_naming_file_and_field(string name)
    {
        Qemu.Require();
        var c = MalformedCases.All.Single(x => x.Name == name);
        using var dir = new TempDir("malformed-");
        string path = bases.CopyTo(c.Base, dir[$"{name}.qcow2"]);
        c.Damage(path, Layout.Of(path));
        string before = FileHash.Sha256(path);

        var outcome = Exerciser.Run(path);
        Assert.True(outcome.Kind == OutcomeKind.TypedError, $"{name}: {outcome}");
        string message = outcome.Error!.Message;
        Assert.Contains(path, message, StringComparison.Ordinal);
        Assert.True(c.Fields.Any(f => message.Contains(f, StringComparison.Ordinal)),
            $"{name}: the message names none of [{string.Join(", ", c.Fields)}]: {message}");
        // Our words, not the runtime's ("The archive entry was compressed using an unsupported compression method").
        Assert.DoesNotContain("archive", message, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(" the an ", message, StringComparison.Ordinal);

        string output = dir["out.raw"];
        if (c.OnlySnapshot)
        {
            // One damaged snapshot entry hides nothing else: the current state still converts; the entry is refused.
            var current = QcowProcess.Run(["convert", "-O", "raw", path, output]);
            Assert.True(current.ExitCode == 0, $"{name}: the current state does not convert: {current.StdErr}");
            File.Delete(output);
            string id;
            using (var image = Format.QcowImage.Open(path)) id = image.Snapshots.First(s => !s.IsIntact).Id;
            AssertCliFails(QcowProcess.Run(["convert", "-l", $"snapshot.id={id}", "-O", "raw", path, output]), path);
        }
        else
        {
            AssertCliFails(QcowProcess.Run(["convert", "-O", "raw", path, output]), path);
        }
        Assert.False(File.Exists(output), "a failed convert left its output");
        Assert.Empty(Directory.GetFiles(dir.Path, ".out.raw*"));
        Assert.Equal(before, FileHash.Sha256(path));
    }

    /// <summary>Damage that qemu reads through: our bytes must be qemu's bytes.</summary>
    public static IEnumerable<object[]> BenignNames => MalformedCases.Readable.Select(c => new object[] { c.Name });

    [SkippableTheory]
    [MemberData(nameof(BenignNames))]
    public void Damage_qemu_reads_through_reads_the_same_bytes(string name)
    {
        Qemu.Require();
        var c = MalformedCases.Readable.Single(x => x.Name == name);
        using var dir = new TempDir("benign-");
        string path = bases.CopyTo(c.Base, dir[$"{name}.qcow2"]);
        c.Damage(path, Layout.Of(path));
        string before = FileHash.Sha256(path);

        var outcome = Exerciser.Run(path);
        Assert.True(outcome.Kind == OutcomeKind.Read, $"{name}: {outcome}");
        string raw = dir["qemu.raw"];
        Qemu.Img("convert", "-U", "-O", "raw", path, raw);
        Assert.True(File.ReadAllBytes(raw).AsSpan().SequenceEqual(outcome.CurrentState), $"{name}: our read differs from qemu's");
        Assert.Equal(before, FileHash.Sha256(path));
    }

    /// <summary>Asserts the CLI failed with one line that names <paramref name="file"/>, and no stack trace.</summary>
    public static void AssertCliFails(ProcessResult r, string file)
    {
        Assert.True(r.ExitCode != 0, $"qcow exited 0: {r.StdOut}{r.StdErr}");
        string err = r.StdErr.Trim();
        Assert.False(err.Contains('\n'), $"more than one line on stderr:\n{err}");
        Assert.StartsWith("qcow: ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("internal error", err, StringComparison.Ordinal);
        Assert.Contains(file, err, StringComparison.Ordinal);
    }
}
