using System.CommandLine;
using System.Text.Json;
using Qcow.Engine;
using Qcow.Engine.Operations;

namespace Qcow.Cli;

/// <summary><c>qcow check [--output=json] IMAGE</c>: exit 0 clean, 2 corruptions, 3 leaks only, 1 not checked.</summary>
internal static class CheckCommand
{
    public static Command Create()
    {
        var output = Formats.OutputOption();
        var image = new Argument<string>("IMAGE") { Description = "The qcow2 image to check (read-only; nothing is repaired)." };
        var cmd = new Command("check", "Check refcounts and metadata like qemu-img check. Exit 0 clean, 2 corruptions, 3 leaks only, 1 could not check.") { output, image };
        cmd.SetAction(r =>
        {
            CheckResult result;
            try
            {
                result = CheckOperation.Run(new CheckRequest { Image = r.GetValue(image)!, Warning = w => Console.Error.WriteLine($"qcow: warning: {w}") });
            }
            catch (QcowException e)
            {
                return QcowCommand.Fail($"could not check: {e.Message}", 1);
            }
            // As qemu-img check: one line per problem on stderr, whichever the output format.
            foreach (var m in result.Messages) Console.Error.WriteLine(m);
            if (r.GetValue(output) == "json") WriteJson(result);
            else WriteText(result);
            return result.ExitCode;
        });
        return cmd;
    }

    /// <summary>The summary on stdout, as qemu-img check prints it.</summary>
    private static void WriteText(CheckResult r)
    {
        if (r.Corruptions == 0 && r.Leaks == 0 && r.CheckErrors == 0) Console.WriteLine("No errors were found on the image.");
        if (r.Corruptions > 0)
            Console.WriteLine($"\n{r.Corruptions} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.");
        if (r.Leaks > 0)
            Console.WriteLine($"\n{r.Leaks} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.");
        if (r.CheckErrors > 0)
            Console.WriteLine($"\n{r.CheckErrors} internal errors have occurred during the check.");
        // qemu-img leaves this line out when nothing is allocated.
        if (r.TotalClusters > 0 && r.AllocatedClusters > 0)
        {
            string allocated = Percent(r.AllocatedClusters, r.TotalClusters);
            string fragmented = Percent(r.FragmentedClusters, r.AllocatedClusters);
            string compressed = Percent(r.CompressedClusters, r.AllocatedClusters);
            Console.WriteLine($"{r.AllocatedClusters}/{r.TotalClusters} = {allocated}% allocated, {fragmented}% fragmented, {compressed}% compressed clusters");
        }
        Console.WriteLine($"Image end offset: {r.ImageEndOffset}");
    }

    /// <summary>
    /// 100 * part / whole with two decimals as C's <c>%0.2f</c> prints it: a tie (a multiple of 1/8, the only
    /// doubles that fall exactly halfway) rounds to even, where .NET would round it away from zero (3.125: 3.12).
    /// </summary>
    private static string Percent(long part, long whole)
    {
        double p = 100.0 * part / whole;
        if (Math.Floor(p * 8) == p * 8) p = Math.Round(p, 2, MidpointRounding.ToEven);
        return p.ToString("F2", System.Globalization.CultureInfo.InvariantCulture);
    }

    private static void WriteJson(CheckResult r)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            j.WriteNumber("image-end-offset", r.ImageEndOffset);
            j.WriteNumber("total-clusters", r.TotalClusters);
            j.WriteNumber("check-errors", r.CheckErrors);
            if (r.Corruptions > 0) j.WriteNumber("corruptions", r.Corruptions);
            if (r.Leaks > 0) j.WriteNumber("leaks", r.Leaks);
            j.WriteNumber("allocated-clusters", r.AllocatedClusters);
            j.WriteString("filename", r.FileName);
            j.WriteString("format", "qcow2");
            j.WriteNumber("fragmented-clusters", r.FragmentedClusters);
            j.WriteNumber("compressed-clusters", r.CompressedClusters);
            j.WriteEndObject();
        }
        Console.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
    }
}
