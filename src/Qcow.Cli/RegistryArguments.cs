using System.CommandLine;
using System.Globalization;
using Qcow.Engine;
using Qcow.Oci;

namespace Qcow.Cli;

/// <summary>The options <c>push</c> and <c>pull</c> share: transport, trust and progress.</summary>
internal sealed class RegistryArguments
{
    public Option<bool> PlainHttp { get; } = new("--plain-http") { Description = "Reach the registry over plain HTTP (an insecure registry). localhost, 127.0.0.0/8 and ::1 always are." };
    public Option<string> CaFile { get; } = new("--ca-file") { Description = "PEM file of CA certificates to trust besides the system's (a private registry's CA).", HelpName = "FILE" };
    public Option<bool> Progress { get; } = new("-p") { Description = "Show progress (shown anyway when stderr is a terminal)." };

    public IEnumerable<Option> All => [PlainHttp, CaFile, Progress];

    /// <summary>The registry options for <paramref name="reference"/> from the parsed command line.</summary>
    public RegistryOptions Options(ParseResult r, ImageReference reference) => new()
    {
        InsecureRegistries = r.GetValue(PlainHttp) ? [reference.Registry] : [],
        CaFile = r.GetValue(CaFile),
        Progress = QcowCommand.Progress(r.GetValue(Progress) || !Console.IsErrorRedirected),
    };

    /// <summary>A size such as 4096, 64k, 16M or 1G.</summary>
    public static long ParseSize(string text, string option)
    {
        string t = text.Trim();
        long unit = 1;
        if (t.Length > 0 && char.ToUpperInvariant(t[^1]) is 'K' or 'M' or 'G')
        {
            unit = char.ToUpperInvariant(t[^1]) switch { 'K' => 1L << 10, 'M' => 1L << 20, _ => 1L << 30 };
            t = t[..^1];
        }
        if (!long.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out long n) || n <= 0 || n > (8L << 30) / unit)
            throw new QcowException(null, $"{option} {text}: not a size from 1 to 8G (e.g. 4096, 64k, 16M)");
        return n * unit;
    }
}
