using Qcow.Engine;
using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Engine.Views;
using SharpFuzz;

// AFL++ hands each input on stdin (out-of-process mode). The input is written to a file of its own folder (the engine
// opens paths, and a backing file it names must then lie in that folder, which stays empty) and run through what
// reads an image: info, every state read in full, map, check. A QcowException is the promised outcome for bad input;
// any other exception escapes and AFL++ records the input as a crash. Hangs are AFL++'s -t timeout.
string folder = Path.Combine(Path.GetTempPath(), $"qcow-fuzz-{Environment.ProcessId}");
Directory.CreateDirectory(folder);
string path = Path.Combine(folder, "input.qcow2");
var buffer = new byte[1 << 20];

Fuzzer.OutOfProcess.Run(stream =>
{
    using (var f = File.Create(path)) stream.CopyTo(f);
    try
    {
        InfoOperation.Run(new InfoRequest { Image = path, BackingChain = true });
        using (var set = new ImageSet())
        {
            ReadAll(set.View(path));
            foreach (var s in (set.Chain(path)[0] as QcowLink)?.Snapshots ?? [])
                ReadAll(set.View(path, $"snapshot.id={s.Id}"));
        }
        MapOperation.Run(new MapRequest { Image = path });
        if (IsQcow2(path)) CheckOperation.Run(new CheckRequest { Image = path });
    }
    catch (QcowException)
    {
        // A typed error: the promised outcome.
    }
});

void ReadAll(DiskView view)
{
    for (long offset = 0; offset < view.Size;)
    {
        var e = view.GetExtent(offset, Math.Min(buffer.Length, view.Size - offset));
        if (!e.ReadsAsZero) DiskView.ReadExtent(e, buffer.AsSpan(0, (int)e.Length));
        offset += e.Length;
    }
}

static bool IsQcow2(string file)
{
    Span<byte> magic = stackalloc byte[4];
    using var f = File.OpenRead(file);
    return f.Read(magic) == 4 && magic.SequenceEqual((ReadOnlySpan<byte>)[0x51, 0x46, 0x49, 0xfb]);
}
