using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Testing;

namespace Qcow.Engine.Tests.Hostile;

/// <summary>
/// Backing file names are attacker-controlled: protocols are refused, and a backing file must resolve (symlinks
/// followed) inside the naming image's folder tree unless allowed (BackingPolicy.AllowedPaths, --allow-backing).
/// A backing file without a recorded format is probed only as qcow2 or raw, with a warning; raw is never probed.
/// </summary>
public sealed class BackingFileTests
{
    /// <summary>A 1 MiB top image in <paramref name="folder"/> whose backing name is <paramref name="backing"/> (written as is).</summary>
    private static string TopNaming(string folder, string backing, string format = "raw", string name = "top.qcow2")
    {
        string top = Path.Combine(folder, name);
        Qemu.Img("create", "-q", "-f", "qcow2", top, "1M");
        Qemu.Img("rebase", "-u", "-b", backing, "-F", format, top);
        return top;
    }

    [SkippableTheory]
    [InlineData("json:{\"file\":{\"driver\":\"file\",\"filename\":\"/etc/passwd\"}}")]
    [InlineData("nbd:localhost:10809")]
    [InlineData("nbd+unix:///disk?socket=/tmp/s")]
    [InlineData("http://example.com/base.qcow2")]
    [InlineData("file:base.raw")]
    public void Protocol_backing_names_are_refused_with_a_clear_error(string backing)
    {
        Qemu.Require();
        using var dir = new TempDir("protocol-");
        string top = TopNaming(dir.Path, backing);
        var outcome = Exerciser.Run(top);
        Assert.True(outcome.Kind == OutcomeKind.TypedError, outcome.ToString());
        Assert.IsType<QcowFormatException>(outcome.Error);
        Assert.Contains("protocol", outcome.Error!.Message, StringComparison.Ordinal);
        Assert.Contains(top, outcome.Error.Message, StringComparison.Ordinal);
        var r = QcowProcess.Run(["convert", "-O", "raw", top, dir["out.raw"]]);
        MalformedImageTests.AssertCliFails(r, top);
        Assert.Contains("protocol", r.StdErr, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Backing_file_etc_passwd_is_refused_unless_allowed()
    {
        Qemu.Require();
        using var dir = new TempDir("passwd-");
        string top = TopNaming(dir.Path, "/etc/passwd");
        string passwdHash = FileHash.Sha256("/etc/passwd");

        var outcome = Exerciser.Run(top);
        Assert.True(outcome.Kind == OutcomeKind.TypedError, outcome.ToString());
        Assert.Contains("/etc/passwd", outcome.Error!.Message, StringComparison.Ordinal);
        Assert.Contains("--allow-backing", outcome.Error.Message, StringComparison.Ordinal);
        var r = QcowProcess.Run(["convert", "-O", "raw", top, dir["out.raw"]]);
        MalformedImageTests.AssertCliFails(r, top);
        Assert.False(File.Exists(dir["out.raw"]));

        // Allowed explicitly, it is an ordinary raw backing file.
        var allowed = QcowProcess.Run(["convert", "--allow-backing", "/etc/passwd", "-O", "raw", top, dir["out.raw"]]);
        Assert.True(allowed.ExitCode == 0, allowed.StdErr);
        var passwd = File.ReadAllBytes("/etc/passwd");
        Assert.True(File.ReadAllBytes(dir["out.raw"]).AsSpan(0, passwd.Length).SequenceEqual(passwd));
        Assert.Equal(passwdHash, FileHash.Sha256("/etc/passwd"));
    }

    [SkippableFact]
    public void Absolute_path_outside_the_tree_is_refused_unless_allowed()
    {
        Qemu.Require();
        using var dir = new TempDir("absolute-");
        using var elsewhere = new TempDir("elsewhere-");
        string baseImage = elsewhere["base.qcow2"];
        BaseWithData(baseImage);
        string top = TopNaming(dir.Path, baseImage, "qcow2");

        AssertRefusedOutside(top, baseImage);
        AssertReadsLikeQemu(top, new BackingPolicy { AllowedPaths = [elsewhere.Path] }, dir);
    }

    [SkippableFact]
    public void Dot_dot_out_of_the_tree_is_refused_unless_allowed()
    {
        Qemu.Require();
        using var dir = new TempDir("dotdot-");
        string baseImage = dir["base.qcow2"];
        BaseWithData(baseImage);
        Directory.CreateDirectory(dir["sub"]);
        string top = TopNaming(dir["sub"], "../base.qcow2", "qcow2");

        AssertRefusedOutside(top, baseImage);
        var r = QcowProcess.Run(["convert", "-O", "raw", top, dir["out.raw"]]);
        MalformedImageTests.AssertCliFails(r, top);
        var allowed = QcowProcess.Run(["convert", "--allow-backing", dir.Path, "-O", "raw", top, dir["out.raw"]]);
        Assert.True(allowed.ExitCode == 0, allowed.StdErr);
        Qemu.AssertIdentical(top, dir["out.raw"]);

        // A name that leaves the tree and comes back in stays allowed: only where it resolves counts.
        string inside = TopNaming(dir["sub"], "../sub/../sub/base2.qcow2", "qcow2", "top2.qcow2");
        Qemu.Img("create", "-q", "-f", "qcow2", dir["sub/base2.qcow2"], "1M");
        AssertReadsLikeQemu(inside, null, dir);
    }

    [SkippableFact]
    public void Symlink_out_of_the_tree_is_refused_unless_allowed()
    {
        Qemu.Require();
        using var dir = new TempDir("symlink-");
        using var elsewhere = new TempDir("elsewhere-");
        string baseImage = elsewhere["base.qcow2"];
        BaseWithData(baseImage);
        File.CreateSymbolicLink(dir["link.qcow2"], baseImage);
        Directory.CreateSymbolicLink(dir["linkdir"], elsewhere.Path);
        string viaFile = TopNaming(dir.Path, "link.qcow2", "qcow2", "top1.qcow2");
        string viaFolder = TopNaming(dir.Path, "linkdir/base.qcow2", "qcow2", "top2.qcow2");

        AssertRefusedOutside(viaFile, baseImage);
        AssertRefusedOutside(viaFolder, baseImage);
        AssertReadsLikeQemu(viaFile, new BackingPolicy { AllowedPaths = [baseImage] }, dir);
        AssertReadsLikeQemu(viaFolder, new BackingPolicy { AllowedPaths = [elsewhere.Path] }, dir);
    }

    [SkippableFact]
    public void Backing_file_without_format_is_probed_as_qcow2_or_raw_with_a_warning()
    {
        Qemu.Require();
        using var dir = new TempDir("probe-");
        BaseWithData(dir["base.qcow2"]);
        Qemu.Img("create", "-q", "-f", "vmdk", dir["base.vmdk"], "1M");
        string qcowTop = TopNaming(dir.Path, "base.qcow2", "qcow2", "top1.qcow2");
        string vmdkTop = TopNaming(dir.Path, "base.vmdk", "vmdk", "top2.qcow2");
        RemoveBackingFormat(qcowTop);
        RemoveBackingFormat(vmdkTop);

        var warnings = new List<QcowWarning>();
        var policy = new BackingPolicy { Warning = warnings.Add };
        var chain = InfoOperation.Run(new InfoRequest { Image = qcowTop, BackingChain = true, Policy = policy }).Images;
        Assert.Equal("qcow2", chain[1].Format);
        // Anything that is not qcow2 is raw: a VMDK (or any other format qemu would probe) is never parsed as such.
        chain = InfoOperation.Run(new InfoRequest { Image = vmdkTop, BackingChain = true, Policy = policy }).Images;
        Assert.Equal("raw", chain[1].Format);
        // Each names the image that names the backing file without its format.
        Assert.Equal([qcowTop, vmdkTop], warnings.Select(w => w.File));
        Assert.All(warnings, w => Assert.StartsWith("no backing format recorded", w.Message, StringComparison.Ordinal));

        var r = QcowProcess.Run(["info", "--backing-chain", qcowTop]);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("qcow: warning:", r.StdErr, StringComparison.Ordinal);
        AssertReadsLikeQemu(qcowTop, null, dir);
    }

    [SkippableFact]
    public void Backing_format_raw_is_never_probed()
    {
        Qemu.Require();
        using var dir = new TempDir("rawfmt-");
        // A qcow2 file named as a raw backing file: its bytes are the guest data, its header is not parsed.
        BaseWithData(dir["base.qcow2"]);
        string top = TopNaming(dir.Path, "base.qcow2", "raw");
        var warnings = new List<string>();
        var chain = InfoOperation.Run(new InfoRequest { Image = top, BackingChain = true, Policy = new BackingPolicy { Warning = w => warnings.Add(w.ToString()) } }).Images;
        Assert.Equal("raw", chain[1].Format);
        Assert.Empty(warnings);
        AssertReadsLikeQemu(top, null, dir);
    }

    /// <summary>A 1 MiB qcow2 image with its first 64 KiB written.</summary>
    private static void BaseWithData(string path)
    {
        Qemu.Img("create", "-q", "-f", "qcow2", path, "1M");
        Qemu.Io(path, "write -q -P 0x5a 0 64k");
    }

    private static void AssertRefusedOutside(string top, string target)
    {
        var outcome = Exerciser.Run(top);
        Assert.True(outcome.Kind == OutcomeKind.TypedError, outcome.ToString());
        string m = outcome.Error!.Message;
        Assert.Contains(top, m, StringComparison.Ordinal);
        Assert.Contains(PathPolicyReal(target), m, StringComparison.Ordinal);
        Assert.Contains("outside", m, StringComparison.Ordinal);
    }

    private static string PathPolicyReal(string path) => new FileInfo(path).ResolveLinkTarget(true)?.FullName ?? Path.GetFullPath(path);

    private static void AssertReadsLikeQemu(string top, BackingPolicy? policy, TempDir dir)
    {
        var outcome = Exerciser.Run(top, policy);
        Assert.True(outcome.Kind == OutcomeKind.Read, outcome.ToString());
        string raw = dir["qemu.raw"];
        Qemu.Img("convert", "-U", "-O", "raw", top, raw);
        Assert.True(File.ReadAllBytes(raw).AsSpan().SequenceEqual(outcome.CurrentState));
    }

    /// <summary>Turns the backing format extension into an unknown one, so no format is recorded.</summary>
    private static void RemoveBackingFormat(string image)
    {
        var ext = Layout.Of(image).Extensions.Single(e => e.Type == 0xe2792aca);
        HostileImages.Put(image, ext.Offset, 4, 0x12345678);
    }
}
