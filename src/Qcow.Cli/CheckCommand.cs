using System.CommandLine;
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
            if (r.GetValue(output) == "json") WriteJson(result, r.GetValue(image)!);
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

    /// <summary>
    /// The summary as qemu-img check --output=json prints it, byte for byte: its key order and indent, the name as
    /// given on the command line, and each counter but check-errors left out when it is zero.
    /// </summary>
    private static void WriteJson(CheckResult r, string fileName)
    {
        var w = Console.Out;
        var fields = new List<string>();
        void Number(string key, long value)
        {
            if (value != 0) fields.Add($"    \"{key}\": {value}");
        }
        Number("image-end-offset", r.ImageEndOffset);
        Number("compressed-clusters", r.CompressedClusters);
        Number("total-clusters", r.TotalClusters);
        Number("corruptions", r.Corruptions);
        fields.Add($"    \"check-errors\": {r.CheckErrors}");
        Number("leaks", r.Leaks);
        Number("allocated-clusters", r.AllocatedClusters);
        fields.Add($"    \"filename\": {Formats.QemuJsonString(fileName)}");
        fields.Add("    \"format\": \"qcow2\"");
        Number("fragmented-clusters", r.FragmentedClusters);
        w.Write($"{{\n{string.Join(",\n", fields)}\n}}\n");
    }
}
