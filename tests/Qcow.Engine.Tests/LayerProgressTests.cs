using Qcow.Engine.Operations;
using Qcow.Testing;

namespace Qcow.Engine.Tests;

/// <summary>
/// linearize's progress covers each whole layer (comparison, writing, hash and rename) and goes layer after layer in
/// the order the layers appear: a layer's figure only rises, and reaches its size exactly when the layer is in place.
/// </summary>
public class LayerProgressTests
{
    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Progress_goes_layer_by_layer_and_ends_when_each_layer_is_in_place(bool compress)
    {
        Qemu.Require();
        using var dir = new TempDir("progress");
        string top = new ImageBuilder(dir, seed: 51).SeedChain("16M");
        string outDir = dir["out"];
        var heard = new List<(ProgressInfo Info, bool InPlace)>();
        var result = LinearizeOperation.Run(new LinearizeRequest
        {
            TopImage = top, OutputFolder = outDir,
            Options = Writing.WriteOptions.Default with { Compress = compress },
        }, p => heard.Add((p, File.Exists(Path.Combine(outDir, p.Stage)))));

        // One run of reports per layer, in the order the layers are in the chain (the order they appear).
        var stages = heard.Select(h => h.Info.Stage).Distinct().ToList();
        Assert.Equal(result.Layers.Select(l => l.Layer.FileName), stages);
        var runs = heard.Select((h, i) => (h.Info.Stage, i)).GroupBy(x => x.Stage).ToList();
        foreach (var g in runs)
            Assert.True(g.Last().i - g.First().i + 1 == g.Count(), $"the reports of {g.Key} are interleaved with another layer's");

        foreach (var layer in result.Layers)
        {
            var mine = heard.Where(h => h.Info.Stage == layer.Layer.FileName).ToList();
            Assert.All(mine, h => Assert.Equal(layer.Layer.VirtualSize, h.Info.Total));
            // Rising, and complete exactly when the layer is in place: never before, always at the end.
            for (int i = 1; i < mine.Count; i++) Assert.True(mine[i].Info.Done > mine[i - 1].Info.Done, $"{layer.Layer.FileName}: progress fell or repeated");
            Assert.All(mine[..^1], h => Assert.False(h.InPlace, $"{layer.Layer.FileName} was in place at {h.Info.Done} of {h.Info.Total}"));
            Assert.Equal(layer.Layer.VirtualSize, mine[^1].Info.Done);
            Assert.True(mine[^1].InPlace, $"{layer.Layer.FileName} reported complete before it was in place");
            // The comparison and the writing were heard, not only the end.
            Assert.Contains(mine, h => h.Info.Done > 0 && h.Info.Done < h.Info.Total);
        }
    }
}
