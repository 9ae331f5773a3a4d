using System.CommandLine;
using Qcow.Oci;

namespace Qcow.Cli;

/// <summary><c>qcow pull REF DIR</c>: a chain artifact into a folder, verified, each file atomically.</summary>
internal static class PullCommand
{
    public static Command Create()
    {
        var shared = new RegistryArguments();
        var reference = new Argument<string>("REF") { Description = "host[:port]/repository[:tag] or host[:port]/repository@sha256:…" };
        var dir = new Argument<string>("DIR") { Description = "Folder to write chain.json and the layers into." };
        var cmd = new Command("pull", "Pull a chain artifact from an OCI registry into a folder; every blob is verified, files present with the right digest are kept.")
        {
            reference, dir,
        };
        foreach (var o in shared.All) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var source = ImageReference.Parse(r.GetValue(reference)!);
            var request = new PullRequest { Reference = source, Folder = r.GetValue(dir)! };
            var result = ChainPull.RunAsync(request, shared.Options(r, source), ConvertCommand.CancelOnCtrlC()).GetAwaiter().GetResult();
            foreach (string f in result.Replaced) Console.Error.WriteLine($"qcow: replaced {Path.Combine(request.Folder, f)} (its content differed)");
            Console.Error.WriteLine($"qcow: {result.Written.Count + result.Replaced.Count} files written ({Formats.Size(result.BytesDownloaded)}), {result.Skipped.Count} already present");
            Console.WriteLine(source.WithDigest(result.Digest));
            return 0;
        });
        return cmd;
    }
}
