using System.CommandLine;
using System.Text.Json;
using Qcow.Engine.Operations;

namespace Qcow.Cli;

/// <summary><c>qcow map [--output=json] [-l SNAPSHOT] IMAGE</c>.</summary>
internal static class MapCommand
{
    public static Command Create()
    {
        var output = Formats.OutputOption();
        var snapshot = new Option<string>("-l", "--snapshot") { Description = "Map this snapshot (id or name; snapshot.id=ID or snapshot.name=NAME to be explicit).", HelpName = "SNAPSHOT" };
        var allow = QcowCommand.AllowBackingOption();
        var image = new Argument<string>("IMAGE") { Description = "The image to map." };
        var cmd = new Command("map", "Show where each guest byte comes from: data, zero or unallocated, the chain depth and host offset (like qemu-img map).") { output, snapshot, allow, image };
        cmd.SetAction(r =>
        {
            var entries = MapOperation.Run(new MapRequest { Image = r.GetValue(image)!, Snapshot = r.GetValue(snapshot), Policy = QcowCommand.Policy(r, allow) }).Entries;
            if (r.GetValue(output) == "json") WriteJson(entries);
            else
            {
                Console.WriteLine($"{"Offset",-16}{"Length",-16}{"Mapped to",-16}File");
                foreach (var e in entries.Where(e => e.Offset is not null))
                    Console.WriteLine($"{"0x" + e.Start.ToString("x"),-16}{"0x" + e.Length.ToString("x"),-16}{"0x" + e.Offset!.Value.ToString("x"),-16}{e.File}");
            }
            return 0;
        });
        return cmd;
    }

    private static void WriteJson(IReadOnlyList<MapEntry> entries)
    {
        // One object per line, as qemu-img prints it: "[{ ... },\n{ ... }]".
        var w = new StringWriter { NewLine = "\n" };
        w.Write('[');
        for (int i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            string offset = e.Offset is { } o ? $", \"offset\": {o}" : "";
            if (i > 0) w.Write(",\n");
            w.Write($"{{ \"start\": {e.Start}, \"length\": {e.Length}, \"depth\": {e.Depth}, \"present\": {B(e.Present)}, \"zero\": {B(e.Zero)}, \"data\": {B(e.Data)}{offset}}}");
        }
        w.WriteLine(']');
        Console.Write(w.ToString());
        static string B(bool b) => b ? "true" : "false";
    }
}
