using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Qcow.Engine.Operations;

namespace Qcow.Build.Tasks;

/// <summary>
/// An input stamp: text naming everything an output depends on that timestamps alone cannot show (options, item
/// metadata, engine version) plus the size and time of every input file. It is rewritten only when its text
/// changes, so its timestamp is the time its output went out of date; it is the Inputs of the work targets.
/// </summary>
internal sealed class Stamp
{
    private readonly StringBuilder _text = new();

    /// <summary>Versions of the engine and the tasks (module ids change with every change of code).</summary>
    public static string Versions { get; } =
        $"engine={Describe(typeof(Linearizer).Assembly)}\ntasks={Describe(typeof(Stamp).Assembly)}";

    public Stamp(string what)
    {
        _text.Append("# Qcow.Build.Sdk input stamp: when this text changes, ").Append(what).Append(" is rebuilt.\n");
        _text.Append(Versions).Append('\n');
    }

    /// <summary>Adds a key and value.</summary>
    public Stamp Add(string key, string? value)
    {
        _text.Append(key).Append('=').Append(value ?? "").Append('\n');
        return this;
    }

    /// <summary>
    /// Adds input files with their size and last write time, or with their SHA-256 when <paramref name="hash"/> (for
    /// CI, where a checkout gives every file a new time but the same content).
    /// </summary>
    public Stamp Files(IEnumerable<string> files, bool hash)
    {
        foreach (var f in files)
        {
            var info = new FileInfo(f);
            _text.Append("input=").Append(f).Append('|');
            if (!info.Exists) _text.Append("missing");
            else if (hash) _text.Append(info.Length).Append("|sha256:").Append(Hash(f));
            else _text.Append(info.Length).Append('|').Append(info.LastWriteTimeUtc.Ticks);
            _text.Append('\n');
        }
        return this;
    }

    private static readonly Dictionary<string, (long Size, long Time, string Sha)> s_hashes = [];

    /// <summary>SHA-256 of a file, remembered by size and time within the process (a chain's files appear in many stamps).</summary>
    private static string Hash(string path)
    {
        var info = new FileInfo(path);
        lock (s_hashes)
            if (s_hashes.TryGetValue(path, out var h) && h.Size == info.Length && h.Time == info.LastWriteTimeUtc.Ticks) return h.Sha;
        using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        string sha = Convert.ToHexStringLower(SHA256.HashData(s));
        lock (s_hashes) s_hashes[path] = (info.Length, info.LastWriteTimeUtc.Ticks, sha);
        return sha;
    }

    /// <summary>The stamp's text.</summary>
    public override string ToString() => _text.ToString();

    /// <summary>Whether the file at <paramref name="path"/> already holds this text.</summary>
    public bool IsCurrent(string path)
    {
        try
        {
            return File.Exists(path) && File.ReadAllText(path) == ToString();
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Writes the text (through a temporary file and a rename, so a killed build leaves the old text or the new).</summary>
    public void Write(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temp, ToString());
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>A short stable id of a text (file-name safe).</summary>
    public static string Id(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];

    private static string Describe(Assembly a) =>
        $"{a.GetName().Name} {a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion} {a.ManifestModule.ModuleVersionId}";
}
