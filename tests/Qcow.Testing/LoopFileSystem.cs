using System.Globalization;

namespace Qcow.Testing;

/// <summary>
/// A file system made for one test: a sparse image file on a loop device (xfs with reflink=1 or 0, btrfs, ext4) or a
/// tmpfs, mounted in a temporary folder; unmounted and detached on Dispose. Needs root, losetup and the mkfs tool:
/// without them the test is skipped with the reason, or fails when QCOW_REQUIRE_QEMU=1 (CI runs as root with
/// xfsprogs and btrfs-progs installed).
/// </summary>
public sealed class LoopFileSystem : IDisposable
{
    private readonly TempDir _dir;
    private readonly string? _device;
    private bool _mounted;

    private LoopFileSystem(string kind)
    {
        _dir = new TempDir($"fs-{kind}");
        Kind = kind;
        Path = _dir["mnt"];
        Directory.CreateDirectory(Path);
        try
        {
            if (kind == "tmpfs")
            {
                Run("mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", Path);
            }
            else
            {
                string image = _dir["fs.img"];
                // 512 MiB: above mkfs.xfs's minimum; sparse, so it costs what the test writes.
                using (var f = File.Create(image)) f.SetLength(512L << 20);
                _device = Run("losetup", "--find", "--show", image).StdOut.Trim();
                string[] mkfs = kind switch
                {
                    "xfs" => ["mkfs.xfs", "-q", "-m", "reflink=1", _device],
                    "xfs-noreflink" => ["mkfs.xfs", "-q", "-m", "reflink=0", _device],
                    "btrfs" => ["mkfs.btrfs", "-q", _device],
                    "ext4" => ["mkfs.ext4", "-q", _device],
                    _ => throw new ArgumentException($"unknown file system kind {kind}", nameof(kind)),
                };
                Run(mkfs[0], mkfs[1..]);
                Run("mount", _device, Path);
            }
            _mounted = true;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>xfs, xfs-noreflink, btrfs, ext4 or tmpfs.</summary>
    public string Kind { get; }

    /// <summary>The mount point.</summary>
    public string Path { get; }

    /// <summary>A path inside the file system.</summary>
    public string this[string name] => System.IO.Path.Combine(Path, name);

    /// <summary>Makes and mounts a file system of <paramref name="kind"/>, or skips (in CI: fails) saying why it cannot.</summary>
    public static LoopFileSystem Create(string kind)
    {
        string? missing = null;
        if (!OperatingSystem.IsLinux()) missing = "loop-mounted file systems need Linux";
        else if (Environment.UserName != "root") missing = "loop-mounting a file system needs root";
        else
        {
            string[] tools = kind switch
            {
                "xfs" or "xfs-noreflink" => ["losetup", "mkfs.xfs"],
                "btrfs" => ["losetup", "mkfs.btrfs"],
                "ext4" => ["losetup", "mkfs.ext4"],
                _ => [],
            };
            string? absent = tools.Concat(["mount", "umount"]).FirstOrDefault(t => Which(t) is null);
            if (absent is not null)
                missing = $"{absent} not installed (apt-get install -y xfsprogs btrfs-progs e2fsprogs mount)";
        }
        if (missing is not null)
        {
            if (Qemu.Required) throw new InvalidOperationException($"QCOW_REQUIRE_QEMU=1 but {missing}");
            Skip.If(true, missing);
        }
        try
        {
            return new LoopFileSystem(kind);
        }
        catch (InvalidOperationException e) when (!Qemu.Required)
        {
            // No free loop device (a container without /dev/loop*), or mount refused: skip, saying so.
            Skip.If(true, $"cannot make a {kind} file system here: {e.Message.Split('\n')[0]}");
            throw;
        }
    }

    /// <summary>
    /// Bytes of <paramref name="file"/> in extents the file system marks shared (FIEMAP_EXTENT_SHARED, as
    /// <c>filefrag -v</c> shows it).
    /// </summary>
    public static long SharedBytes(string file)
    {
        if (Which("filefrag") is null)
        {
            const string reason = "filefrag not installed (apt-get install -y e2fsprogs)";
            if (Qemu.Required) throw new InvalidOperationException($"QCOW_REQUIRE_QEMU=1 but {reason}");
            Skip.If(true, reason);
        }
        var r = Qemu.Run(Which("filefrag")!, ["-v", "-b1", file], [0]);
        // With -b1 the offsets are in bytes: "  0:   0..  65535:   98304..  163839:  65536:   shared,last,eof".
        long shared = 0;
        foreach (var line in r.StdOut.Split('\n'))
        {
            var cols = line.Split(':', StringSplitOptions.TrimEntries);
            if (cols.Length < 5 || !int.TryParse(cols[0], out _)) continue;
            if (!cols[^1].Split(',').Contains("shared")) continue;
            shared += long.Parse(cols[3], CultureInfo.InvariantCulture);
        }
        return shared;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_mounted)
        {
            // A busy mount (a file still open) is detached lazily rather than left behind.
            if (Qemu.Run(Which("umount") ?? "umount", [Path], [0, 1, 32]).ExitCode != 0) Qemu.Run(Which("umount") ?? "umount", ["-l", Path], [0, 1, 32]);
            _mounted = false;
        }
        if (_device is not null) Qemu.Run(Which("losetup") ?? "losetup", ["-d", _device], [0, 1]);
        _dir.Dispose();
    }

    private static ProcessResult Run(string exe, params string[] args) => Qemu.Run(Which(exe) ?? exe, args, [0]);

    private static string? Which(string name)
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(System.IO.Path.PathSeparator)
                     .Concat(["/usr/sbin", "/sbin"]))
        {
            string p = System.IO.Path.Combine(dir, name);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
