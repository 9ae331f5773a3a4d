using System.CommandLine;
using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Engine.Writing;

namespace Qcow.Cli;

/// <summary>The <c>qcow</c> command line: qemu-img's verbs and spelling, over Qcow.Engine.</summary>
internal static class QcowCommand
{
    public static int Run(string[] args)
    {
        var root = new RootCommand("qcow: inspect, check, convert and linearize qcow2 images and chains (qemu-img's spelling); push and pull chains through OCI registries.");
        root.Subcommands.Add(InfoCommand.Create());
        root.Subcommands.Add(CheckCommand.Create());
        root.Subcommands.Add(MapCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(ConvertCommand.Create());
        root.Subcommands.Add(LinearizeCommand.Create());
        root.Subcommands.Add(PushCommand.Create());
        root.Subcommands.Add(PullCommand.Create());
        var parse = root.Parse(args);
        var config = new InvocationConfiguration { EnableDefaultExceptionHandler = false };
        try
        {
            return parse.Invoke(config);
        }
        catch (QcowException e)
        {
            return Fail(e.Message, 1);
        }
        catch (OperationCanceledException)
        {
            return Fail("cancelled; no partial output was left behind", 130);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Fail(e.Message, 1);
        }
        catch (Exception e) when (Environment.GetEnvironmentVariable("QCOW_DEBUG") is null)
        {
            return Fail($"internal error ({e.GetType().Name}): {e.Message}. Please report it; set QCOW_DEBUG=1 for details", 1);
        }
    }

    /// <summary>Prints one error line to stderr and returns <paramref name="code"/>.</summary>
    public static int Fail(string message, int code)
    {
        Console.Error.WriteLine($"qcow: {message}");
        return code;
    }

    /// <summary>The <c>--allow-backing</c> option shared by every command that opens chains.</summary>
    public static Option<string[]> AllowBackingOption() => new("--allow-backing")
    {
        Description = "Also allow backing files under this folder (or this file); by default a backing file must lie in the folder tree of the image naming it. Repeatable.",
        HelpName = "PATH",
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>The policy from <c>--allow-backing</c>, with warnings printed to stderr.</summary>
    /// <summary>
    /// The write options of <c>-o</c> and <c>-c</c>, with <c>QCOW_DIRECT_IO=1</c> from the environment mapped onto
    /// <see cref="WriteOptions.DirectIo"/> (the engine reads no environment variable).
    /// </summary>
    public static WriteOptions WriteOptions(string? options, bool compress) =>
        Engine.Writing.WriteOptions.Default.With(options) with
        {
            Compress = compress,
            DirectIo = Environment.GetEnvironmentVariable("QCOW_DIRECT_IO") == "1",
        };

    public static BackingPolicy Policy(ParseResult r, Option<string[]> allow) => new()
    {
        AllowedPaths = r.GetValue(allow) ?? [],
        Warning = w => Console.Error.WriteLine($"qcow: warning: {w}"),
    };

    /// <summary>A progress printer like qemu-img -p: "    (12.34/100%)" rewritten in place.</summary>
    public static Action<Engine.Operations.ProgressInfo>? Progress(bool enabled)
    {
        if (!enabled) return null;
        double last = -1;
        string lastStage = "";
        return p =>
        {
            double pct = p.Total == 0 ? 100 : 100.0 * p.Done / p.Total;
            if (p.Stage != lastStage) { lastStage = p.Stage; last = -1; }
            if (pct - last < 1 && pct < 100) return;
            last = pct;
            Console.Error.Write($"\r    ({pct,6:0.00}/100%) {p.Stage}");
            if (p.Done >= p.Total) Console.Error.WriteLine();
        };
    }
}
