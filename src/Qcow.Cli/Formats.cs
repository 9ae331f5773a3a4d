using System.CommandLine;
using System.Globalization;
using Qcow.Engine.Format;

namespace Qcow.Cli;

/// <summary>Output helpers shared by the commands: qemu-img's size and table formats.</summary>
internal static class Formats
{
    /// <summary><c>--output=human|json</c>.</summary>
    public static Option<string> OutputOption()
    {
        var o = new Option<string>("--output") { Description = "Output format: human (default) or json.", HelpName = "FMT", DefaultValueFactory = _ => "human" };
        o.AcceptOnlyFromAmong("human", "json");
        return o;
    }

    /// <summary>A size as qemu-img prints it: "64 MiB", "1.5 GiB", "512 B".</summary>
    public static string Size(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        double v = bytes;
        int u = 0;
        while (v >= 1024 && u < units.Length - 1) { v /= 1024; u++; }
        if (u == 0) return $"{bytes} B";
        string s = v >= 100 ? v.ToString("0", CultureInfo.InvariantCulture) : v >= 10 ? v.ToString("0.#", CultureInfo.InvariantCulture) : v.ToString("0.##", CultureInfo.InvariantCulture);
        return $"{s} {units[u]}";
    }

    /// <summary>The snapshot table as qemu-img snapshot -l prints it.</summary>
    public static string SnapshotTable(IReadOnlyList<Snapshot> snapshots)
    {
        var w = new StringWriter { NewLine = "\n" };
        w.WriteLine($"{"ID",-10}{"TAG",-17}{"VM SIZE",8}{"DATE",20}{"VM CLOCK",13}{"ICOUNT",11}");
        foreach (var s in snapshots)
        {
            string date = DateTimeOffset.FromUnixTimeSeconds(s.DateSeconds).ToLocalTime().ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
            ulong ns = s.VmClockNanoseconds;
            ulong secs = ns / 1_000_000_000;
            string clock = $"{secs / 3600:00}:{secs / 60 % 60:00}:{secs % 60:00}.{ns / 1_000_000 % 1000:000}";
            string icount = s.Icount is { } ic ? ic.ToString(CultureInfo.InvariantCulture) : "";
            w.WriteLine($"{s.Id,-9} {s.Name,-16} {Size((long)s.VmStateSize),8}{date,20}{clock,13}{icount,11}");
        }
        return w.ToString();
    }

    /// <summary>
    /// A JSON string as qemu's JSON writer quotes it: printable ASCII as is (but <c>"</c> and <c>\</c>), the short
    /// escapes for control characters that have one, every other character as <c>\uXXXX</c> in capitals.
    /// </summary>
    public static string QemuJsonString(string s)
    {
        var b = new System.Text.StringBuilder(s.Length + 2).Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\b': b.Append("\\b"); break;
                case '\f': b.Append("\\f"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                default:
                    if (c >= 0x20 && c <= 0x7e) b.Append(c);
                    else b.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:X4}");
                    break;
            }
        }
        return b.Append('"').ToString();
    }
}
