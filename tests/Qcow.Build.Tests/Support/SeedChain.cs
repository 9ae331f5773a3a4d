using Qcow.Testing;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Qcow.Build.Tests.Support;

/// <summary>
/// The seed chain imageA(sn0) -> imageB(sn0,sn1) -> imageC(sn0), made once with qemu-img/qemu-io, and qemu-img's full
/// export of every state (the oracle the layers are compared with). Tests copy the chain into their own folder.
/// </summary>
public sealed class SeedChain : IDisposable
{
    private readonly Lazy<TempDir> _dir;
    private readonly Dictionary<string, string> _exports = [];

    /// <summary>Creates the fixture; images are made on first use (so tests without qemu can skip first).</summary>
    public SeedChain()
    {
        _dir = new Lazy<TempDir>(() =>
        {
            var dir = new TempDir("seed");
            new ImageBuilder(dir, seed: 4).SeedChain("8M");
            return dir;
        });
    }

    /// <summary>Copies imageA/B/C into <paramref name="folder"/> (created); returns the folder.</summary>
    public string CopyTo(string folder)
    {
        Qemu.Require();
        Directory.CreateDirectory(folder);
        foreach (var f in new[] { "imageA.qcow2", "imageB.qcow2", "imageC.qcow2" })
            File.Copy(_dir.Value[f], Path.Combine(folder, f), overwrite: true);
        return folder;
    }

    /// <summary>qemu-img's full export of a state of the seed chain (made once).</summary>
    public string Export(string image, string? snapshot)
    {
        string key = $"{image}@{snapshot}";
        lock (_exports)
        {
            if (_exports.TryGetValue(key, out var path)) return path;
            path = Qemu.Export(_dir.Value[image], snapshot, _dir.Value[$"export-{Path.GetFileNameWithoutExtension(image)}-{snapshot ?? "current"}.qcow2"]);
            _exports[key] = path;
            return path;
        }
    }

    /// <summary>Asserts every layer in <paramref name="outDir"/> shows the same guest contents as qemu-img's export of its state, and is clean.</summary>
    public void AssertLayersCorrect(string outDir, IEnumerable<string>? only = null)
    {
        var wanted = only?.ToHashSet();
        foreach (var (file, image, snapshot) in SeedStates.All)
        {
            if (wanted is not null && !wanted.Contains(file)) continue;
            string layer = Path.Combine(outDir, file);
            Assert.True(File.Exists(layer), $"{layer} missing");
            Qemu.AssertIdentical(Export(image, snapshot), layer);
            Qemu.AssertClean(layer);
        }
    }

    /// <summary>Last write times (UTC ticks) of the files in a folder.</summary>
    public static Dictionary<string, long> Times(string folder) =>
        Directory.EnumerateFiles(folder).ToDictionary(f => Path.GetFileName(f), f => File.GetLastWriteTimeUtc(f).Ticks);

    /// <summary>Sets a file's last write time to now (a "touch").</summary>
    public static void Touch(string path) => File.SetLastWriteTimeUtc(path, DateTime.UtcNow);

    /// <inheritdoc />
    public void Dispose()
    {
        if (_dir.IsValueCreated) _dir.Value.Dispose();
    }
}

/// <summary>Shares one <see cref="SeedChain"/> among the test classes.</summary>
[CollectionDefinition(Name)]
public sealed class SeedCollection : ICollectionFixture<SeedChain>
{
    /// <summary>The collection name.</summary>
    public const string Name = "seed chain";
}
