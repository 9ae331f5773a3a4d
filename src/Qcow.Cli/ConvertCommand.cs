using System.CommandLine;
using Qcow.Engine;
using Qcow.Engine.Operations;
using Qcow.Engine.Writing;

namespace Qcow.Cli;

/// <summary>
/// <c>qcow convert [-O qcow2|raw] [-o OPTIONS] [-c] [-l|-s SNAPSHOT] [-B BACKING [-F FMT]] [-d [base_image=IMAGE,]snapshot=SNAPSHOT] SOURCE OUTPUT</c>.
/// </summary>
internal static class ConvertCommand
{
    public static Command Create()
    {
        var format = new Option<string>("-O") { Description = "Output format: qcow2 (default) or raw.", HelpName = "FMT", DefaultValueFactory = _ => "qcow2" };
        format.AcceptOnlyFromAmong("qcow2", "raw");
        var options = new Option<string>("-o") { Description = "Output options: cluster_size=SIZE (default 64k), compat=0.10|1.1 (default 1.1), compression_type=zlib|zstd.", HelpName = "OPTIONS" };
        var compress = new Option<bool>("-c") { Description = "Compress data clusters (deflate, or zstd with -o compression_type=zstd)." };
        var snapL = new Option<string>("-l") { Description = "Export this snapshot: snapshot.id=ID, snapshot.name=NAME, or a bare id-or-name. Exported at the snapshot's own disk size.", HelpName = "SNAPSHOT" };
        var snapS = new Option<string>("-s") { Description = "Same as -l.", HelpName = "SNAPSHOT" };
        var backing = new Option<string>("-B") { Description = "Backing file of the output, written as given (relative to the output's folder).", HelpName = "BACKING" };
        var backingFmt = new Option<string>("-F") { Description = "Format of the backing file (default qcow2).", HelpName = "FMT" };
        var diff = new Option<string>("-d") { Description = "Write only what differs from [base_image=IMAGE,]snapshot=SNAPSHOT; needs -B naming an image with that content.", HelpName = "DIFF" };
        var progress = new Option<bool>("-p") { Description = "Show progress." };
        var allow = QcowCommand.AllowBackingOption();
        var source = new Argument<string>("SOURCE") { Description = "Source image (qcow2 or raw)." };
        var output = new Argument<string>("OUTPUT") { Description = "Output image; written to a temporary file and renamed when complete. '-' writes it to standard output (a pipe or a file, not a terminal), front to back." };
        var cmd = new Command("convert", "Export an image or one of its snapshots to a new deterministic qcow2 or raw image; with -d, only the difference from another state.")
        {
            format, options, compress, snapL, snapS, backing, backingFmt, diff, progress, allow, source, output,
        };
        cmd.SetAction(r =>
        {
            string? l = r.GetValue(snapL), s = r.GetValue(snapS);
            if (l is not null && s is not null) return QcowCommand.Fail("give -l or -s, not both", 1);
            var wo = QcowCommand.WriteOptions(r.GetValue(options), r.GetValue(compress));
            string target = r.GetValue(output)!;
            using var stdout = target == "-" ? StandardOutput.Open() : null;
            var request = new ConvertRequest
            {
                Source = r.GetValue(source)!,
                SourceSnapshot = l ?? s,
                Output = stdout is null ? target : StandardOutput.Name,
                OutputStream = stdout,
                OutputFormat = r.GetValue(format)!,
                Options = wo,
                BackingFile = r.GetValue(backing),
                BackingFormat = r.GetValue(backingFmt),
                Diff = r.GetValue(diff) is { } d ? DiffBase.Parse(d) : null,
                Policy = QcowCommand.Policy(r, allow),
            };
            try
            {
                ConvertOperation.Run(request, QcowCommand.Progress(r.GetValue(progress)), CancelOnCtrlC());
            }
            catch (OperationCanceledException) when (stdout is not null)
            {
                return QcowCommand.Fail("cancelled; what went to standard output is incomplete", 130);
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>A token cancelled by Ctrl+C, so the temporary output is removed instead of left behind.</summary>
    public static CancellationToken CancelOnCtrlC()
    {
        var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        return cts.Token;
    }
}
