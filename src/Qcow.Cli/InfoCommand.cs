using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Qcow.Engine.Format;
using Qcow.Engine.Operations;

namespace Qcow.Cli;

/// <summary><c>qcow info [--output=json] [--backing-chain] IMAGE</c>.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var output = Formats.OutputOption();
        var chain = new Option<bool>("--backing-chain") { Description = "Show every image of the backing chain, top first." };
        var allow = QcowCommand.AllowBackingOption();
        var image = new Argument<string>("IMAGE") { Description = "The image to describe." };
        var cmd = new Command("info", "Show an image's format, sizes, backing file and snapshots (like qemu-img info).") { output, chain, allow, image };
        cmd.SetAction(r =>
        {
            var infos = InfoOperation.Run(new InfoRequest { Image = r.GetValue(image)!, BackingChain = r.GetValue(chain), Policy = QcowCommand.Policy(r, allow) }).Images;
            if (r.GetValue(output) == "json") Console.WriteLine(ToJson(infos, r.GetValue(chain)));
            else
            {
                for (int i = 0; i < infos.Count; i++)
                {
                    if (i > 0) Console.WriteLine();
                    Console.Write(ToText(infos[i]));
                }
            }
            return 0;
        });
        return cmd;
    }

    private static string ToText(ImageInfo info)
    {
        var w = new StringWriter { NewLine = "\n" };
        w.WriteLine($"image: {info.FileName}");
        w.WriteLine($"file format: {info.Format}");
        w.WriteLine($"virtual size: {Formats.Size(info.VirtualSize)} ({info.VirtualSize} bytes)");
        w.WriteLine($"disk size: {Formats.Size(info.ActualSize)}");
        // In qemu-img's order: encrypted before the cluster size, the dirty bit after it.
        if (info.Encrypted) w.WriteLine("encrypted: yes");
        if (info.ClusterSize is { } cs) w.WriteLine($"cluster_size: {cs}");
        if (info.Dirty) w.WriteLine("cleanly shut down: no");
        if (info.BackingFilename is { } b)
        {
            w.WriteLine(info.FullBackingFilename is { } full && full != b ? $"backing file: {b} (actual path: {full})" : $"backing file: {b}");
            if (info.BackingFilenameFormat is { } f) w.WriteLine($"backing file format: {f}");
        }
        if (info.Snapshots.Count > 0)
        {
            w.WriteLine("Snapshot list:");
            w.Write(Formats.SnapshotTable(info.Snapshots));
            foreach (var s in info.Snapshots.Where(s => !s.IsIntact))
                w.WriteLine($"Damaged snapshot table entry {s.Index} (id {s.Id}, '{s.Name}'): {s.ProblemField}: {s.Problem}; it cannot be read");
        }
        if (info.Header is { } h)
        {
            w.WriteLine("Format specific information:");
            w.WriteLine($"    compat: {h.Compat}");
            w.WriteLine($"    compression type: {h.CompressionType.QemuName()}");
            if (h.Version >= 3) w.WriteLine($"    lazy refcounts: {Bool(LazyRefcounts(h))}");
            w.WriteLine($"    refcount bits: {h.RefcountBits}");
            if (info.DataFile is { } df) w.WriteLine($"    data file: {df}");
            if (HasDataFile(h)) w.WriteLine($"    data file raw: {Bool(DataFileRaw(h))}");
            if (EncryptFormat(h) is { } ef) w.WriteLine($"    encrypt:\n        format: {ef}");
            if (h.Version >= 3)
            {
                w.WriteLine($"    corrupt: {Bool(info.Corrupt)}");
                w.WriteLine($"    extended l2: {Bool(h.ExtendedL2)}");
            }
        }
        return w.ToString();
    }

    private static string ToJson(IReadOnlyList<ImageInfo> infos, bool asArray)
    {
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            if (asArray) j.WriteStartArray();
            foreach (var info in infos) WriteInfo(j, info);
            if (asArray) j.WriteEndArray();
        }
        return System.Text.Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void WriteInfo(Utf8JsonWriter j, ImageInfo info)
    {
        j.WriteStartObject();
        if (info.Snapshots.Count > 0)
        {
            j.WriteStartArray("snapshots");
            foreach (var s in info.Snapshots)
            {
                j.WriteStartObject();
                if (s.Icount is { } ic) j.WriteNumber("icount", ic);
                j.WriteNumber("vm-clock-nsec", s.VmClockNanoseconds % 1_000_000_000);
                j.WriteString("name", s.Name);
                j.WriteNumber("date-sec", s.DateSeconds);
                j.WriteNumber("date-nsec", s.DateNanoseconds);
                j.WriteNumber("vm-clock-sec", s.VmClockNanoseconds / 1_000_000_000);
                j.WriteString("id", s.Id);
                j.WriteNumber("vm-state-size", s.VmStateSize);
                if (s.DiskSize is { } ds) j.WriteNumber("disk-size", ds);
                // Not in qemu's schema: what makes a damaged entry unreadable.
                if (!s.IsIntact) j.WriteString("damaged", $"{s.ProblemField}: {s.Problem}");
                j.WriteEndObject();
            }
            j.WriteEndArray();
        }
        j.WriteNumber("virtual-size", info.VirtualSize);
        j.WriteString("filename", info.FileName);
        if (info.ClusterSize is { } cs) j.WriteNumber("cluster-size", cs);
        j.WriteString("format", info.Format);
        j.WriteNumber("actual-size", info.ActualSize);
        if (info.Encrypted) j.WriteBoolean("encrypted", true);
        if (info.BackingFilename is { } b)
        {
            j.WriteString("backing-filename", b);
            if (info.FullBackingFilename is { } full) j.WriteString("full-backing-filename", full);
            if (info.BackingFilenameFormat is { } f) j.WriteString("backing-filename-format", f);
        }
        if (info.Header is { } h)
        {
            j.WriteStartObject("format-specific");
            j.WriteString("type", "qcow2");
            j.WriteStartObject("data");
            j.WriteString("compat", h.Compat);
            j.WriteString("compression-type", h.CompressionType.QemuName());
            if (h.Version >= 3) j.WriteBoolean("lazy-refcounts", LazyRefcounts(h));
            j.WriteNumber("refcount-bits", h.RefcountBits);
            if (info.DataFile is { } df) j.WriteString("data-file", df);
            if (HasDataFile(h)) j.WriteBoolean("data-file-raw", DataFileRaw(h));
            if (EncryptFormat(h) is { } ef)
            {
                j.WriteStartObject("encrypt");
                j.WriteString("format", ef);
                j.WriteEndObject();
            }
            if (h.Version >= 3)
            {
                j.WriteBoolean("corrupt", info.Corrupt);
                j.WriteBoolean("extended-l2", h.ExtendedL2);
            }
            j.WriteEndObject();
            j.WriteEndObject();
        }
        j.WriteBoolean("dirty-flag", info.Dirty);
        j.WriteEndObject();
    }

    // qemu-img's "Format specific information": version 2 images show only compat, compression type and refcount
    // bits; "data file raw" appears whenever the external data file bit is set, with or without a file name.
    private static string Bool(bool b) => b ? "true" : "false";
    private static bool LazyRefcounts(QcowHeader h) => (h.CompatibleFeatures & CompatibleFeatures.LazyRefcounts) != 0;
    private static bool HasDataFile(QcowHeader h) => (h.IncompatibleFeatures & IncompatibleFeatures.ExternalDataFile) != 0;
    private static bool DataFileRaw(QcowHeader h) => (h.AutoclearFeatures & AutoclearFeatures.RawExternalData) != 0;

    /// <summary>qemu's encrypt format for the old AES method; LUKS (whose details qemu reads from its header) is not shown.</summary>
    private static string? EncryptFormat(QcowHeader h) => h.CryptMethod == 1 ? "aes" : null;
}
