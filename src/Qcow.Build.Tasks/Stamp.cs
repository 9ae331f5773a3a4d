using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Qcow.Engine.Operations;

namespace Qcow.Build.Tasks;

/// <summary>
/// An input stamp: text naming everything an output depends on that timestamps alone cannot show (options, item
/// metadata, engine version) plus the size and time (or hash) of every input file. Paths in it are relative to the
/// project, so a copy of the project folder elsewhere has the same stamps. It is rewritten only when its text
/// changes, so its timestamp is the time its output went out of date; it is the Inputs of the work targets.
/// </summary>
internal sealed class Stamp
{
    private readonly StringBuilder _text = new();
    private readonly string _baseDir;

    /// <summary>Versions of the engine and the tasks (module ids change with every change of code).</summary>
    public static string Versions { get; } =
        $"engine={Describe(typeof(LinearizeOperation).Assembly)}\ntasks={Describe(typeof(Stamp).Assembly)}";

    /// <summary>A stamp of <paramref name="output"/>; paths are written relative to <paramref name="baseDir"/>.</summary>
    public Stamp(string output, string baseDir)
    {
        _baseDir = baseDir;
        _text.Append("# Qcow.Build.Sdk input stamp: when this text changes, ").Append(Relative(output)).Append(" is rebuilt.\n");
        _text.Append(Versions).Append('\n');
    }

    /// <summary>Adds a key and value.</summary>
    public Stamp Add(string key, string? value)
    {
        _text.Append(key).Append('=').Append(value ?? "").Append('\n');
        return this;
    }

    /// <summary>Adds a key and a path (written relative to the project).</summary>
    public Stamp AddPath(string key, string? path) => Add(key, string.IsNullOrEmpty(path) ? path : Relative(path));

    /// <summary>
    /// Adds input files with their size and last write time, or with their SHA-256 when <paramref name="hashes"/> is
    /// given (for CI, where a checkout gives every file a new time but the same content).
    /// </summary>
    public Stamp Files(IEnumerable<string> files, InputHashes? hashes, CancellationToken cancel)
    {
        foreach (var f in files)
        {
            var info = new FileInfo(f);
            _text.Append("input=").Append(Relative(f)).Append('|');
            if (!info.Exists) _text.Append("missing");
            else if (hashes is not null) _text.Append(info.Length).Append("|sha256:").Append(hashes.Get(f, cancel));
            else _text.Append(info.Length).Append('|').Append(info.LastWriteTimeUtc.Ticks);
            _text.Append('\n');
        }
        return this;
    }

    /// <summary>A path relative to the project, with forward slashes (the same text on every platform).</summary>
    public string Relative(string path) => RelativePath(_baseDir, path);

    /// <summary><paramref name="path"/> relative to <paramref name="baseDir"/>, with forward slashes.</summary>
    public static string RelativePath(string baseDir, string path) => Path.GetRelativePath(baseDir, path).Replace('\\', '/');

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
    public void Write(string path) => WriteAtomically(path, ToString());

    /// <summary>
    /// Records that <paramref name="output"/> is now complete and built from the stamp at <paramref name="stampPath"/>
    /// (written by the work tasks after the output). See <see cref="BuiltFrom"/>.
    /// </summary>
    public static void MarkBuilt(string stampPath, string output)
    {
        if (!File.Exists(stampPath) || !File.Exists(output)) return;
        WriteAtomically(stampPath + ".built", $"{Id(File.ReadAllText(stampPath))} {new FileInfo(output).Length}\n");
    }

    /// <summary>
    /// Whether <paramref name="output"/> was completed from exactly this stamp text. Then a stamp newer than its
    /// output only means the files were copied without their times (a clone elsewhere): the stamp's time is set back
    /// to the output's, and MSBuild sees the output up to date, as it is.
    /// </summary>
    public bool BuiltFrom(string stampPath, string output)
    {
        try
        {
            string record = stampPath + ".built";
            return File.Exists(record) && File.Exists(output)
                && File.ReadAllText(record) == $"{Id(ToString())} {new FileInfo(output).Length}\n";
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void WriteAtomically(string path, string text)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        string temp = $"{path}.{Environment.ProcessId}.tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>A short stable id of a text (file-name safe).</summary>
    public static string Id(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12];

    private static string Describe(Assembly a) =>
        $"{a.GetName().Name} {a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion} {a.ManifestModule.ModuleVersionId}";
}
