using Qcow.Engine.Chain;
using Qcow.Engine.Format;
using Qcow.Engine.Views;

namespace Qcow.Engine.Operations;

/// <summary>
/// Plans a linear chain: one layer per state, bottom-up (within an image: its snapshots in table order, then its
/// current state), and names each layer's file from a pattern. Writes nothing.
/// </summary>
internal static class ChainPlanner
{
    /// <summary>
    /// Plans the layers of <paramref name="request"/>'s chain opened in <paramref name="set"/>; <paramref name="states"/>
    /// gets, for each layer, how to open the view of its state (over the current state of everything below).
    /// </summary>
    public static ChainPlan Plan(LinearizeRequest request, ImageSet set, out List<(PlannedLayer Layer, Func<DiskView> View)> states)
    {
        var chain = set.Chain(request.TopImage);
        var wanted = request.Snapshots?.ToHashSet(StringComparer.Ordinal);
        var matched = new HashSet<string>(StringComparer.Ordinal);
        states = [];
        var layers = new List<PlannedLayer>();
        var deps = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        var names = new Dictionary<string, string>(StringComparer.Ordinal);
        var files = new List<string>();
        string? below = null;
        for (int i = chain.Count - 1; i >= 0; i--)
        {
            var link = chain[i];
            files.Add(link.Path);
            files.AddRange(link.Files.Skip(1).Select(f => f.Path));
            deps[link.Path] = files.ToArray();
            string stem = Path.GetFileNameWithoutExtension(link.Path);
            var linkStates = new List<Snapshot?>();
            if (link is QcowLink { Image: var image })
            {
                // Each wanted snapshot is looked up in every image of the chain, with qemu's rule (SnapshotSelector).
                var selected = new HashSet<Snapshot>(ReferenceEqualityComparer.Instance);
                foreach (var w in wanted ?? Enumerable.Empty<string>())
                {
                    if (SnapshotSelector.TryFind(image.Snapshots, w) is not { } hit) continue;
                    matched.Add(w);
                    selected.Add(hit);
                }
                // In table order, whatever the order asked.
                linkStates.AddRange(image.Snapshots.Where(s => wanted is null || selected.Contains(s)));
            }
            linkStates.Add(null);
            int depth = i;
            foreach (var snap in linkStates)
            {
                string file = LayerName(request.NamePattern ?? DefaultNamePattern, stem, snap?.Name, link.Path);
                // A damaged snapshot entry fails the chain, named, unless the Snapshots list leaves it out.
                if (snap is { IsIntact: false })
                    throw new QcowFormatException(link.Path, $"snapshot table entry {snap.Index} ('{snap.Name}', id {snap.Id}) {snap.ProblemField}", $"{snap.Problem}; leave it out with --snapshots (MSBuild: Snapshots metadata)");
                // Snapshot names come from the image: never let one steer the output out of OUTDIR.
                if (snap is not null && !IsPlainFileName(snap.Name))
                    throw new QcowException(link.Path, $"snapshot name '{snap.Name}' cannot be part of a file name (path separators, '..' or control characters); leave it out with --snapshots or rename it");
                if (names.TryGetValue(file, out var clash))
                    throw new QcowException(link.Path, $"two states would both be written as {file} (also from {clash}); rename one of the images or snapshots");
                names[file] = link.Path;
                long size = snap is null ? link.VirtualSize : (long)(snap.DiskSize ?? (ulong)link.VirtualSize);
                var layer = new PlannedLayer { FileName = file, BackingFileName = below, SourceImage = link.Path, Snapshot = snap?.Name, VirtualSize = size };
                layers.Add(layer);
                var captured = snap;
                states.Add((layer, () => ImageSet.StateView(chain, depth, captured)));
                below = file;
            }
        }
        if (wanted is not null)
        {
            var missing = wanted.Where(w => !matched.Contains(w)).ToList();
            if (missing.Count > 0)
            {
                var all = chain.OfType<QcowLink>().SelectMany(l => l.Image.Snapshots.Select(s => $"{Path.GetFileName(l.Path)}:{s.Name}")).ToList();
                throw new QcowException(request.TopImage, $"snapshot(s) {string.Join(", ", missing)} not found in the chain; snapshots are: {(all.Count == 0 ? "(none)" : string.Join(", ", all))}");
            }
        }
        return new ChainPlan { Layers = layers, InputFiles = files, DependenciesByImage = deps, TopFormat = chain[0].Format };
    }

    /// <summary>The default layer name pattern: <c>imageA_sn0.qcow2</c>, <c>imageA.qcow2</c>.</summary>
    public const string DefaultNamePattern = "{image}_{snapshot}";

    /// <summary>Expands a name pattern (see <see cref="LinearizeRequest.NamePattern"/>) into a layer file name.</summary>
    public static string LayerName(string pattern, string image, string? snapshot, string sourcePath)
    {
        if (!pattern.Contains("{image}", StringComparison.Ordinal))
            throw new QcowException(sourcePath, $"layer name pattern '{pattern}' must contain {{image}} (layers of different images would clash)");
        string name = pattern.Replace("{image}", image, StringComparison.Ordinal);
        if (snapshot is not null)
            name = name.Replace("{snapshot}", snapshot, StringComparison.Ordinal);
        else
        {
            foreach (var sep in new[] { "_", "-", "." })
                name = name.Replace(sep + "{snapshot}", "", StringComparison.Ordinal).Replace("{snapshot}" + sep, "", StringComparison.Ordinal);
            name = name.Replace("{snapshot}", "", StringComparison.Ordinal);
        }
        if (!pattern.Contains("{snapshot}", StringComparison.Ordinal) && snapshot is not null)
            throw new QcowException(sourcePath, $"layer name pattern '{pattern}' must contain {{snapshot}} (the states of one image would clash)");
        if (!IsPlainFileName(name))
            throw new QcowException(sourcePath, $"layer name '{name}' from pattern '{pattern}' is not a plain file name");
        return name.EndsWith(".qcow2", StringComparison.OrdinalIgnoreCase) ? name : name + ".qcow2";
    }

    private static bool IsPlainFileName(string name) =>
        name.Length > 0 && name != "." && name != ".." && !name.Contains("..", StringComparison.Ordinal) &&
        name.IndexOfAny(['/', '\\', ':']) < 0 && !name.Any(char.IsControl) &&
        name.IndexOfAny(Path.GetInvalidFileNameChars()) < 0;
}
