namespace Qcow.Testing.Registry;

/// <summary>
/// Fake docker credential helpers: bash scripts named <c>docker-credential-NAME</c> in a folder put on PATH, which
/// answer <c>get</c> as docker-credential-helpers do. Each records the server address it read on stdin in
/// <c>NAME.asked</c> beside it.
/// </summary>
public static class FakeCredentialHelper
{
    /// <summary>A helper answering <c>{"ServerURL","Username","Secret"}</c>.</summary>
    public static void Answering(string folder, string name, string user, string secret) =>
        Write(folder, name, $$"""printf '{"ServerURL":"%s","Username":"%s","Secret":"%s"}\n' "$asked" '{{user}}' '{{secret}}'""");

    /// <summary>A helper holding nothing for any address: docker's not-found message and exit 1.</summary>
    public static void NotFound(string folder, string name) =>
        Write(folder, name, "echo 'credentials not found in native keychain'; exit 1");

    /// <summary>A helper failing with <paramref name="message"/> on stdout and exit <paramref name="code"/>.</summary>
    public static void Failing(string folder, string name, string message, int code) =>
        Write(folder, name, $"echo '{message}'; exit {code}");

    /// <summary>A helper that never answers.</summary>
    public static void Hanging(string folder, string name) => Write(folder, name, "exec sleep 600");

    /// <summary>The address the helper was asked for, or null if it never ran.</summary>
    public static string? Asked(string folder, string name)
    {
        string path = Path.Combine(folder, $"{name}.asked");
        return File.Exists(path) ? File.ReadAllText(path) : null;
    }

    /// <summary>Writes <c>config.json</c> into <paramref name="folder"/> (a DOCKER_CONFIG) and returns the folder.</summary>
    public static string DockerConfig(string folder, string json)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), json);
        return folder;
    }

    /// <summary><paramref name="folder"/> before the process's PATH.</summary>
    public static string SearchPath(string folder) => folder + Path.PathSeparator + Environment.GetEnvironmentVariable("PATH");

    private static void Write(string folder, string name, string answer)
    {
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, $"docker-credential-{name}");
        File.WriteAllText(path, $"""
            #!/bin/bash
            [ "$1" = get ] || exit 3
            asked=$(cat)
            printf '%s' "$asked" > "$(dirname "$0")/{name}.asked"
            {answer}

            """);
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }
}
