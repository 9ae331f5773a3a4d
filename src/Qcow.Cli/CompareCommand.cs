using System.CommandLine;
using Qcow.Engine;
using Qcow.Engine.Operations;

namespace Qcow.Cli;

/// <summary><c>qcow compare [-s] IMAGE1 IMAGE2</c>: exit 0 identical, 1 different, 2 error.</summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var strict = new Option<bool>("-s", "--strict") { Description = "Strict: sizes and allocation must match too (zero and unallocated are then different)." };
        var allow = QcowCommand.AllowBackingOption();
        var a = new Argument<string>("IMAGE1") { Description = "First image." };
        var b = new Argument<string>("IMAGE2") { Description = "Second image." };
        var cmd = new Command("compare", "Compare the guest contents of two images. Exit 0 identical, 1 different, 2 error.") { strict, allow, a, b };
        cmd.SetAction(r =>
        {
            try
            {
                var result = CompareOperation.Run(new CompareRequest { Image1 = r.GetValue(a)!, Image2 = r.GetValue(b)!, Strict = r.GetValue(strict), Policy = QcowCommand.Policy(r, allow) });
                if (result.Warning is { } w) Console.WriteLine(w);
                Console.WriteLine(result.Message);
                return result.Identical ? 0 : 1;
            }
            catch (QcowException e)
            {
                return QcowCommand.Fail(e.Message, 2);
            }
        });
        return cmd;
    }
}
