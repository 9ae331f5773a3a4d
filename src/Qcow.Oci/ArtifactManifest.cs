using System.Text.Json;

namespace Qcow.Oci;

/// <summary>
/// The OCI 1.1 image manifest of a chain artifact: <c>artifactType</c> <see cref="MediaTypes.Chain"/>, the empty
/// config, and one layer per file with its title. Written compactly in a fixed field order, so the same files give
/// the same manifest digest.
/// </summary>
public sealed record ArtifactManifest(string? ArtifactType, Descriptor Config, IReadOnlyList<Descriptor> Layers)
{
    /// <summary>The content of the empty config blob.</summary>
    public static ReadOnlyMemory<byte> EmptyConfigBytes { get; } = "{}"u8.ToArray();

    /// <summary>The empty config descriptor.</summary>
    public static Descriptor EmptyConfig { get; } = new(MediaTypes.Empty, Digests.Of(EmptyConfigBytes.Span), 2);

    /// <summary>Manifests larger than this are refused when pulled (the distribution spec's usual limit).</summary>
    public const int MaxBytes = 4 << 20;

    /// <summary>The manifest's bytes.</summary>
    public byte[] ToJson()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("schemaVersion", 2);
            json.WriteString("mediaType", MediaTypes.ImageManifest);
            if (ArtifactType is not null) json.WriteString("artifactType", ArtifactType);
            json.WritePropertyName("config");
            Write(json, Config);
            json.WriteStartArray("layers");
            foreach (var l in Layers) Write(json, l);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>Parses and validates a manifest; errors name <paramref name="subject"/> and the field.</summary>
    public static ArtifactManifest Parse(byte[] bytes, string subject)
    {
        try
        {
            using var doc = JsonDocument.Parse(bytes);
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Bad(subject, "manifest", "not a JSON object");
            if (!root.TryGetProperty("schemaVersion", out var v) || v.ValueKind != JsonValueKind.Number || v.GetInt32() != 2)
                throw Bad(subject, "schemaVersion", "is not 2");
            if (root.TryGetProperty("mediaType", out var mt) && mt.GetString() != MediaTypes.ImageManifest)
                throw Bad(subject, "mediaType", $"'{mt.GetString()}' is not an OCI image manifest (an index or a docker image is not a chain)");
            string? artifactType = root.TryGetProperty("artifactType", out var at) ? at.GetString() : null;
            if (!root.TryGetProperty("config", out var config)) throw Bad(subject, "config", "missing");
            if (!root.TryGetProperty("layers", out var layers) || layers.ValueKind != JsonValueKind.Array) throw Bad(subject, "layers", "missing or not an array");
            var list = new List<Descriptor>();
            foreach (var l in layers.EnumerateArray()) list.Add(Read(l, subject, $"layers[{list.Count}]"));
            return new ArtifactManifest(artifactType, Read(config, subject, "config"), list);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new RegistryException(subject, $"the manifest is not valid JSON of the expected shape: {e.Message}");
        }
    }

    private static Descriptor Read(JsonElement e, string subject, string field)
    {
        if (e.ValueKind != JsonValueKind.Object) throw Bad(subject, field, "not an object");
        string mediaType = e.TryGetProperty("mediaType", out var mt) ? mt.GetString() ?? "" : "";
        string digest = e.TryGetProperty("digest", out var d) ? d.GetString() ?? "" : "";
        if (!Digests.IsSha256(digest)) throw Bad(subject, $"{field}.digest", $"'{digest}' is not a sha256 digest");
        if (!e.TryGetProperty("size", out var s) || !s.TryGetInt64(out long size) || size < 0) throw Bad(subject, $"{field}.size", "missing or negative");
        string? title = e.TryGetProperty("annotations", out var a) && a.ValueKind == JsonValueKind.Object
            && a.TryGetProperty(MediaTypes.TitleAnnotation, out var t) ? t.GetString() : null;
        return new Descriptor(mediaType, digest, size, title);
    }

    private static void Write(Utf8JsonWriter json, Descriptor d)
    {
        json.WriteStartObject();
        json.WriteString("mediaType", d.MediaType);
        json.WriteString("digest", d.Digest);
        json.WriteNumber("size", d.Size);
        if (d.Title is not null)
        {
            json.WriteStartObject("annotations");
            json.WriteString(MediaTypes.TitleAnnotation, d.Title);
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    private static RegistryException Bad(string subject, string field, string why) => new(subject, $"manifest {field}: {why}");
}
