using System.CommandLine;
using Qcow.Engine.Operations;
using Qcow.Engine.Writing;

namespace Qcow.Cli;

/// <summary><c>qcow linearize [-o OPTIONS] [-c] [--snapshots LIST] [--verbose] TOP_IMAGE OUTDIR</c>.</summary>
internal static class LinearizeCommand
{
    public static Command Create()
    {
        var options = new Option<string>("-o") { Description = "Layer options: cluster_size=SIZE (default 64k), compat=0.10|1.1, compression_type=zlib|zstd.", HelpName = "OPTIONS" };
        var compress = new Option<bool>("-c") { Description = "Compress data clusters of every layer." };
        var snapshots = new Option<string>("--snapshots") { Description = "Comma-separated snapshot names (or ids) to keep as layers; others are folded into the next state. Default: all.", HelpName = "LIST" };
        var names = new Option<string>("--name-pattern") { Description = "Layer names: {image} and {snapshot} (default {image}_{snapshot}; for a current state {snapshot} and its separator drop out).", HelpName = "PATTERN" };
        var verbose = new Option<bool>("-v", "--verbose") { Description = "Print each layer with the bytes read and written." };
        var progress = new Option<bool>("-p") { Description = "Show progress." };
        var allow = QcowCommand.AllowBackingOption();
        var top = new Argument<string>("TOP_IMAGE") { Description = "The top image of the chain." };
        var outDir = new Argument<string>("OUTDIR") { Description = "Folder for the layers and chain.json." };
        var cmd = new Command("linearize", "Turn a chain of internal snapshots and backing files into a plain external chain: one layer per state, bottom-up, each holding only what differs from the one below, plus chain.json.")
        {
            options, compress, snapshots, names, verbose, progress, allow, top, outDir,
        };
        cmd.SetAction(r =>
        {
            var wo = QcowCommand.WriteOptions(r.GetValue(options), r.GetValue(compress));
            var request = new LinearizeRequest
            {
                TopImage = r.GetValue(top)!,
                OutputFolder = r.GetValue(outDir)!,
                Options = wo,
                NamePattern = r.GetValue(names),
                Snapshots = r.GetValue(snapshots)?.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
                Policy = QcowCommand.Policy(r, allow),
            };
            var result = LinearizeOperation.Run(request, QcowCommand.Progress(r.GetValue(progress)), ConvertCommand.CancelOnCtrlC());
            if (r.GetValue(verbose))
            {
                Console.WriteLine($"{"LAYER",-32} {"BACKING",-32} {"READ",12} {"DATA",8} {"ZERO",8} {"SIZE",12}");
                foreach (var l in result.Layers)
                {
                    var s = l.Stats!;
                    Console.WriteLine($"{l.Layer.FileName,-32} {l.Layer.BackingFileName ?? "-",-32} {s.BytesRead,12} {s.DataClusters,8} {s.ZeroClusters,8} {s.FileSize,12}");
                }
                Console.WriteLine($"wrote {result.Layers.Count} layers and {result.ChainJsonPath}");
            }
            return 0;
        });
        return cmd;
    }
}
