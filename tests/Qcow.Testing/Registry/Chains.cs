using Qcow.Engine.Chain;
using Qcow.Engine.Operations;
using Qcow.Oci;

namespace Qcow.Testing.Registry;

/// <summary>Chain folders to push: the seed chain linearized by the engine, or small synthetic ones.</summary>
public static class Chains
{
    /// <summary>Linearizes the committed samples/seed images into <paramref name="folder"/> (seven layers and chain.json).</summary>
    public static string Seed(string folder)
    {
        string top = Path.Combine(RepoRoot(), "samples", "seed", "images", "imageC.qcow2");
        LinearizeOperation.Run(new LinearizeRequest { TopImage = top, OutputFolder = folder });
        return folder;
    }

    /// <summary>A chain.json over <paramref name="layers"/> files of seeded random bytes, the given sizes.</summary>
    public static string Synthetic(string folder, int seed, params int[] sizes)
    {
        Directory.CreateDirectory(folder);
        var random = new Random(seed);
        var layers = new List<ChainManifestLayer>();
        for (int i = 0; i < sizes.Length; i++)
        {
            byte[] bytes = new byte[sizes[i]];
            random.NextBytes(bytes);
            string name = $"layer{i}.qcow2";
            File.WriteAllBytes(Path.Combine(folder, name), bytes);
            layers.Add(new ChainManifestLayer
            {
                File = name,
                Backing = i == 0 ? null : layers[i - 1].File,
                VirtualSize = 1 << 20,
                Sha256 = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)),
            });
        }
        new ChainManifest(layers).Write(Path.Combine(folder, ChainManifest.FileName));
        return folder;
    }

    /// <summary>Every file of a folder (name → bytes), temporaries included, for exact comparisons.</summary>
    public static SortedDictionary<string, byte[]> Snapshot(string folder) =>
        new(Directory.Exists(folder)
            ? Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes, StringComparer.Ordinal)
            : [], StringComparer.Ordinal);

    /// <summary>Asserts two folders hold the same file names with the same bytes.</summary>
    public static void AssertSameFiles(string expected, string actual)
    {
        var a = Snapshot(expected);
        var b = Snapshot(actual);
        Assert.Equal(a.Keys, b.Keys);
        foreach (var (name, bytes) in a) Assert.True(bytes.AsSpan().SequenceEqual(b[name]), $"{name} differs");
    }

    /// <summary>The repository root (holds Qcow.Build.Sdk.sln).</summary>
    public static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "Qcow.Build.Sdk.sln"))) return d.FullName;
        throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }
}
