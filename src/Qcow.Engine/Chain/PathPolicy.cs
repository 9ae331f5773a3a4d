namespace Qcow.Engine.Chain;

/// <summary>Checks on file names read from images: no protocols, no escape from the image's folder tree.</summary>
internal static class PathPolicy
{
    /// <summary>True for "json:", "nbd:", "http://", "file:" and any other scheme-like prefix.</summary>
    public static bool HasProtocolPrefix(string name)
    {
        int colon = name.IndexOf(':');
        if (colon <= 0) return false;
        // A Windows drive letter ("C:\") is a path, not a protocol.
        if (OperatingSystem.IsWindows() && colon == 1 && char.IsAsciiLetter(name[0])) return false;
        int slash = name.IndexOfAny(['/', '\\']);
        if (slash >= 0 && slash < colon) return false;
        for (int i = 0; i < colon; i++)
        {
            char c = name[i];
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.' or '_')) return false;
        }
        return true;
    }

    /// <summary>True when <paramref name="file"/> lies (symlinks resolved) under <paramref name="folder"/> or an allowed path.</summary>
    public static bool IsAllowed(string file, string folder, IReadOnlyList<string> allowed, bool fileIsReal = false)
    {
        string real = fileIsReal ? file : RealPath(file);
        if (IsUnder(real, RealPath(folder))) return true;
        foreach (var a in allowed)
        {
            string ra = RealPath(Path.GetFullPath(a));
            if (real == ra || IsUnder(real, ra)) return true;
        }
        return false;
    }

    private static bool IsUnder(string path, string folder)
    {
        string f = Path.EndsInDirectorySeparator(folder) ? folder : folder + Path.DirectorySeparatorChar;
        return path.StartsWith(f, OperatingSystem.IsLinux() ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>The path with every symlink along it resolved.</summary>
    public static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full)!;
        string current = root;
        var parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0, hops = 0; i < parts.Length; i++)
        {
            string next = Path.Combine(current, parts[i]);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.LinkTarget is { } target && hops++ < 64)
            {
                string resolved = Path.GetFullPath(Path.IsPathRooted(target) ? target : Path.Combine(current, target));
                // Restart on the resolved prefix plus what is left.
                string rest = string.Join(Path.DirectorySeparatorChar, parts.Skip(i + 1));
                string again = rest.Length == 0 ? resolved : Path.Combine(resolved, rest);
                string againRoot = Path.GetPathRoot(again)!;
                parts = again[againRoot.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
                current = againRoot;
                i = -1;
                continue;
            }
            current = next;
        }
        return current;
    }
}
