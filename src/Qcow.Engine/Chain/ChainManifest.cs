using System.Text.Json;
using Qcow.Engine.Writing;

namespace Qcow.Engine.Chain;

/// <summary>One layer as chain.json describes it.</summary>
public sealed record ChainManifestLayer
{
    /// <summary>The layer's file name, in the chain.json's folder.</summary>
    public required string File { get; init; }
    /// <summary>The backing file name the layer records (the layer below), or null for the bottom layer.</summary>
    public string? Backing { get; init; }
    /// <summary>The source image, relative to the top image's folder, with forward slashes.</summary>
    public string? SourceImage { get; init; }
    /// <summary>The snapshot the layer holds, or null for a current state.</summary>
    public string? Snapshot { get; init; }
    /// <summary>The state's virtual size in bytes.</summary>
    public long VirtualSize { get; init; }
    /// <summary>SHA-256 of the layer file, 64 lower-case hex digits.</summary>
    public required string Sha256 { get; init; }
}

/// <summary>
/// chain.json (<c>qcow-chain/1</c>): the layers of a linear chain, bottom first. Reading validates what a consumer
/// relies on (format, plain unique file names, SHA-256s), so a damaged or foreign file is one error naming the field.
/// </summary>
public sealed record ChainManifest(IReadOnlyList<ChainManifestLayer> Layers)
{
    /// <summary>The value of <c>format</c>.</summary>
    public const string Format = "qcow-chain/1";

    /// <summary>The file name the manifest has beside its layers.</summary>
    public const string FileName = "chain.json";

    /// <summary>Reads and validates <paramref name="path"/>; throws <see cref="QcowFormatException"/> naming the field.</summary>
    public static ChainManifest Read(string path)
    {
        byte[] bytes;
        try
        {
            bytes = System.IO.File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new QcowException(path, $"cannot read: {e.Message}");
        }
        return Parse(bytes, path);
    }

    /// <summary>Parses and validates chain.json bytes; <paramref name="path"/> names the file in errors.</summary>
    public static ChainManifest Parse(ReadOnlySpan<byte> json, string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new QcowFormatException(path, "chain.json", $"not JSON: {e.Message}");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new QcowFormatException(path, "chain.json", "not a JSON object");
            string? format = OptionalString(root, "format", path);
            if (format != Format) throw new QcowFormatException(path, "format", $"is {(format is null ? "missing" : $"'{format}'")}; expected '{Format}'");
            if (!root.TryGetProperty("layers", out var layers) || layers.ValueKind != JsonValueKind.Array)
                throw new QcowFormatException(path, "layers", "missing or not an array");
            var list = new List<ChainManifestLayer>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var l in layers.EnumerateArray())
            {
                string field = $"layers[{list.Count}]";
                if (l.ValueKind != JsonValueKind.Object) throw new QcowFormatException(path, field, "not an object");
                string file = OptionalString(l, "file", path, field) ?? throw new QcowFormatException(path, $"{field}.file", "missing");
                if (!IsPlainFileName(file)) throw new QcowFormatException(path, $"{field}.file", $"'{file}' is not a plain file name");
                if (!seen.Add(file)) throw new QcowFormatException(path, $"{field}.file", $"'{file}' is listed twice");
                string sha = OptionalString(l, "sha256", path, field) ?? throw new QcowFormatException(path, $"{field}.sha256", "missing");
                if (!IsSha256Hex(sha)) throw new QcowFormatException(path, $"{field}.sha256", $"'{sha}' is not 64 lower-case hex digits");
                list.Add(new ChainManifestLayer
                {
                    File = file,
                    Backing = OptionalString(l, "backing", path, field),
                    SourceImage = OptionalString(l, "sourceImage", path, field),
                    Snapshot = OptionalString(l, "snapshot", path, field),
                    VirtualSize = OptionalInt64(l, "virtualSize", path, field) ?? 0,
                    Sha256 = sha,
                });
            }
            if (list.Count == 0) throw new QcowFormatException(path, "layers", "is empty");
            return new ChainManifest(list);
        }
    }

    /// <summary>Writes the manifest to <paramref name="path"/> atomically, in the bytes the linearizer writes.</summary>
    public void Write(string path)
    {
        using var output = OutputFile.Create(path);
        output.Stream.Write(ToJson());
        output.Commit(false);
    }

    /// <summary>The manifest as UTF-8 JSON (indented, ending in a newline): deterministic bytes.</summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        // "\n" on every OS: the default (Environment.NewLine) would give other bytes, and another hash, on Windows.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, NewLine = "\n" }))
        {
            json.WriteStartObject();
            json.WriteString("format", Format);
            json.WriteStartArray("layers");
            foreach (var l in Layers)
            {
                json.WriteStartObject();
                json.WriteString("file", l.File);
                WriteNullable(json, "backing", l.Backing);
                WriteNullable(json, "sourceImage", l.SourceImage);
                WriteNullable(json, "snapshot", l.Snapshot);
                json.WriteNumber("virtualSize", l.VirtualSize);
                json.WriteString("sha256", l.Sha256);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.ToArray();
    }

    /// <summary>True for a name that stays in its folder: no separators, not empty, not <c>.</c> or <c>..</c>.</summary>
    public static bool IsPlainFileName(string name) =>
        name.Length is > 0 and <= 255 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', '\0']) < 0;

    /// <summary>True for 64 lower-case hex digits.</summary>
    public static bool IsSha256Hex(string s) => s.Length == 64 && s.All(c => c is >= '0' and <= '9' or >= 'a' and <= 'f');

    private static void WriteNullable(Utf8JsonWriter json, string name, string? value)
    {
        if (value is null) json.WriteNull(name); else json.WriteString(name, value);
    }

    private static string? OptionalString(JsonElement e, string name, string path, string? parent = null)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw new QcowFormatException(path, parent is null ? name : $"{parent}.{name}", "not a string");
        return v.GetString();
    }

    private static long? OptionalInt64(JsonElement e, string name, string path, string field)
    {
        if (!e.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long n) || n < 0)
            throw new QcowFormatException(path, $"{field}.{name}", "not a non-negative integer");
        return n;
    }
}
