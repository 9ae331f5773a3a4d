using Qcow.Engine.Format;
using Qcow.Engine.IO;
using Qcow.Engine.Views;

namespace Qcow.Engine.Chain;

/// <summary>
/// The images one operation works on, each opened read-only exactly once (so views of the same file share their
/// file handle and caches, and "same file, same host offset" means "same bytes"). Resolves backing chains with the
/// path policy, detects cycles and missing files.
/// </summary>
public sealed class ImageSet : IDisposable
{
    private const int MaxChainLength = 256;
    private readonly Dictionary<string, ChainLink> _links = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IReadOnlyList<ChainLink>> _chains = new(StringComparer.Ordinal);

    /// <summary>Creates an empty set with <paramref name="policy"/> for backing file names.</summary>
    public ImageSet(BackingPolicy? policy = null) => Policy = policy ?? BackingPolicy.Default;

    /// <summary>The backing file policy.</summary>
    public BackingPolicy Policy { get; }

    /// <summary>Every file opened so far (images, raw files, external data files).</summary>
    public IEnumerable<string> OpenedPaths => _links.Values.SelectMany(l => l.Files.Select(f => f.Path));

    /// <summary>Bytes read from every file of the set so far.</summary>
    public long BytesRead => _links.Values.Sum(l => l.Files.Sum(f => f.BytesRead));

    /// <summary>
    /// The chain of <paramref name="path"/>, top first. The top is probed (qcow2 or raw); below it, the backing
    /// format recorded in the image is used, or probed with a warning when none is recorded.
    /// </summary>
    public IReadOnlyList<ChainLink> Chain(string path)
    {
        string top = Path.GetFullPath(path);
        if (_chains.TryGetValue(top, out var known)) return known;
        var chain = new List<ChainLink>();
        var link = Open(top, format: null, namedBy: null);
        chain.Add(link);
        while (link is QcowLink { BackingName: { } name } qcow)
        {
            if (chain.Count >= MaxChainLength)
                throw new QcowException(top, $"backing chain is longer than {MaxChainLength} images");
            string resolved = ResolveNamedFile(link.Path, name, "backing file", chain);
            if (chain.Any(l => l.Path == resolved))
                throw new QcowException(link.Path, $"backing chain has a cycle: {Describe(chain)} -> {resolved}");
            string? format = qcow.Image.Extensions.BackingFormat;
            link = Open(resolved, format, link.Path);
            chain.Add(link);
        }
        _chains[top] = chain;
        return chain;
    }

    /// <summary>Opens only <paramref name="path"/> itself (probed as qcow2 or raw), not its backing chain.</summary>
    public ChainLink Top(string path) => Open(Path.GetFullPath(path), format: null, namedBy: null);

    /// <summary>The view of <paramref name="path"/> at <paramref name="snapshot"/> (null: current state), with its chain.</summary>
    public DiskView View(string path, string? snapshot = null)
    {
        var chain = Chain(path);
        var top = chain[0];
        if (snapshot is null) return StateView(chain, 0, null);
        if (top is not QcowLink q) throw new QcowException(top.Path, "a raw image has no snapshots");
        return StateView(chain, 0, SnapshotSelector.Find(q.Image.Snapshots, snapshot, top.Path));
    }

    /// <summary>
    /// The view of <paramref name="chain"/>[<paramref name="index"/>] at <paramref name="snapshot"/> (null: current
    /// state), over the current state of everything below it.
    /// </summary>
    internal static DiskView StateView(IReadOnlyList<ChainLink> chain, int index, Snapshot? snapshot)
    {
        DiskView? backing = null;
        for (int j = chain.Count - 1; j > index; j--) backing = chain[j].View(null, backing, j - index);
        return chain[index].View(snapshot, backing, 0);
    }

    private ChainLink Open(string path, string? format, string? namedBy)
    {
        if (_links.TryGetValue(path, out var existing)) return existing;
        ImageFile file;
        try
        {
            file = ImageFile.Open(path);
        }
        catch (QcowException e) when (namedBy is not null)
        {
            throw new QcowException(path, $"backing file of {namedBy} cannot be opened: {e.Reason}");
        }
        try
        {
            if (namedBy is not null) RecheckOpened(file, namedBy, "backing file");
            if (format is null)
            {
                format = Probe(file);
                if (namedBy is not null)
                    Policy.Warning?.Invoke(new QcowWarning(namedBy, $"no backing format recorded; probed {path} as {format} (record it with -F)"));
            }
            ChainLink link = format switch
            {
                "qcow2" => new QcowLink(path, QcowImage.Open(file)),
                "raw" => new RawLink(path, file),
                _ => throw new QcowException(namedBy ?? path, $"backing format '{format}' of {path} is not supported (qcow2 and raw are)"),
            };
            if (link is QcowLink { Image.IsMarkedCorrupt: true })
                Policy.Warning?.Invoke(new QcowWarning(path, "the corrupt bit is set (qemu found this image damaged); it is read read-only, as qemu does; 'qemu-img check -r all' can repair it"));
            // Without a recorded name there is nothing to attach; reading guest data is refused later (EnsureDataReadable).
            if (link is QcowLink { Image: { NeedsDataFile: true } image } && image.Extensions.ExternalDataFile is not null)
            {
                string dataPath = ResolveNamedFile(path, image.Extensions.ExternalDataFile, "external data file", [link]);
                var dataFile = ImageFile.Open(dataPath);
                try
                {
                    RecheckOpened(dataFile, path, "external data file");
                }
                catch
                {
                    dataFile.Dispose();
                    throw;
                }
                image.AttachDataFile(dataFile);
            }
            _links[path] = link;
            return link;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static string Probe(ImageFile file)
    {
        Span<byte> magic = stackalloc byte[4];
        return file.ReadAtMost(0, magic) == 4 && IO.BigEndian.U32(magic, 0) == QcowHeader.Magic ? "qcow2" : "raw";
    }

    private string ResolveNamedFile(string namingImage, string name, string what, IReadOnlyList<ChainLink> chain)
    {
        if (name.Length == 0)
            throw new QcowFormatException(namingImage, what, "the name is empty");
        if (name.Contains('\0'))
            throw new QcowFormatException(namingImage, what, "the name contains a NUL byte");
        if (PathPolicy.HasProtocolPrefix(name))
            throw new QcowFormatException(namingImage, what, $"'{name}' is a protocol or pseudo-protocol name; only plain file paths are allowed");
        string folder = Path.GetDirectoryName(namingImage)!;
        string resolved = Path.GetFullPath(Path.IsPathRooted(name) ? name : Path.Combine(folder, name));
        if (!File.Exists(resolved))
            throw new QcowException(namingImage, $"{what} '{name}' not found (looked for {resolved}); chain: {Describe(chain)}");
        if (!PathPolicy.IsAllowed(resolved, folder, Policy.AllowedPaths))
            throw new QcowException(namingImage, $"{what} '{name}' resolves to {PathPolicy.RealPath(resolved)}, outside {PathPolicy.RealPath(folder)}; allow it explicitly (qcow --allow-backing PATH, MSBuild property QcowAllowedBackingPaths)");
        return resolved;
    }

    /// <summary>The policy again, on the file actually opened: a symlink swapped in after the check is caught here.</summary>
    private void RecheckOpened(ImageFile file, string namingImage, string what)
    {
        string folder = Path.GetDirectoryName(namingImage)!;
        // Without the kernel's answer (not Linux), the path is resolved again: a narrower gap, not none.
        string real = file.OpenedRealPath ?? PathPolicy.RealPath(file.Path);
        if (!PathPolicy.IsAllowed(real, folder, Policy.AllowedPaths, fileIsReal: true))
            throw new QcowException(namingImage, $"{what} opened as {real}, outside {PathPolicy.RealPath(folder)} (did the path change while it was opened?); allow it explicitly (qcow --allow-backing PATH, MSBuild property QcowAllowedBackingPaths)");
    }

    private static string Describe(IReadOnlyList<ChainLink> chain) => string.Join(" -> ", chain.Select(l => l.Path));

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var link in _links.Values)
        {
            link.Dispose();
        }
        _links.Clear();
    }
}
