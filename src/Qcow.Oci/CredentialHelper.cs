using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace Qcow.Oci;

/// <summary>
/// One docker credential helper, <c>docker-credential-NAME</c>, run as docker runs it: <c>get</c> with the
/// registry's server address on stdin, answering <c>{"ServerURL","Username","Secret"}</c> on stdout, or exiting
/// non-zero with <c>credentials not found in native keychain</c> when it has none. The answer's secret is never put
/// in a message; a helper that does not answer within the timeout is stopped.
/// </summary>
internal sealed class CredentialHelper(string name, string? searchPath, TimeSpan timeout, string configuredBy)
{
    /// <summary>What docker-credential-helpers print when they hold nothing for the address.</summary>
    private const string NotFoundMessage = "credentials not found in native keychain";

    private string Program => $"docker-credential-{name}";

    /// <summary>The helper's credentials for <paramref name="serverAddress"/>, or null when it has none.</summary>
    public RegistryCredentials? Get(string serverAddress)
    {
        // The name becomes a file name on PATH: a path in it would run something else than a helper.
        if (name.Length == 0 || name.IndexOfAny(['/', '\\', '\0']) >= 0 || name is "." or "..")
            throw new RegistryException(Program, $"{configuredBy}: not a credential helper name");
        string executable = Locate() ?? throw new RegistryException(Program,
            $"the credential helper {configuredBy} names is not on PATH; install it, or remove it from config.json to use auths or {CredentialSource.UserNameVariable}/{CredentialSource.PasswordVariable}");

        var start = new ProcessStartInfo(executable)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("get");
        using var process = StartProcess(start);
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            process.StandardInput.Write(serverAddress);
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The helper exited without reading its input: its exit code and output say why.
        }
        if (!process.WaitForExit(timeout))
        {
            try { process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit();
            throw new RegistryException(Program, $"no answer for {serverAddress} within {timeout.TotalSeconds:0.#} s ({configuredBy}); stopped it");
        }
        process.WaitForExit(); // the output streams are complete only now
        string output = stdout.GetAwaiter().GetResult().Trim();
        if (process.ExitCode != 0)
        {
            if (output == NotFoundMessage) return null;
            string said = FirstLine(output.Length > 0 ? output : stderr.GetAwaiter().GetResult().Trim());
            throw new RegistryException(Program, $"get for {serverAddress} exited {process.ExitCode}{(said.Length > 0 ? $": {said}" : "")} ({configuredBy})");
        }
        return Parse(output, serverAddress);
    }

    private RegistryCredentials? Parse(string output, string serverAddress)
    {
        try
        {
            using var doc = JsonDocument.Parse(output);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException();
            string? user = Text(doc.RootElement, "Username");
            string? secret = Text(doc.RootElement, "Secret");
            // An empty answer is how some helpers say "nothing stored": anonymous, as docker takes it.
            if (string.IsNullOrEmpty(secret)) return null;
            if (string.IsNullOrEmpty(user))
                throw new RegistryException(Program, $"get for {serverAddress} answered a Secret without a Username ({configuredBy})");
            return new RegistryCredentials(user, secret);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            // The output may hold the secret: only its shape is described.
            throw new RegistryException(Program, $"get for {serverAddress} answered something that is not JSON {{\"ServerURL\",\"Username\",\"Secret\"}} ({configuredBy})");
        }
    }

    private static string? Text(JsonElement root, string property) =>
        root.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    private Process StartProcess(ProcessStartInfo start)
    {
        try
        {
            return Process.Start(start) ?? throw new RegistryException(Program, $"cannot start it ({configuredBy})");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new RegistryException(Program, $"cannot start it ({configuredBy}): {e.Message}");
        }
    }

    /// <summary>The helper's file on the search path (PATH), as exec finds it; null if none.</summary>
    private string? Locate()
    {
        foreach (string folder in (searchPath ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(folder, Program);
            if (OperatingSystem.IsWindows())
            {
                if (File.Exists(candidate + ".exe")) return candidate + ".exe";
                continue;
            }
            if (!File.Exists(candidate)) continue;
            if ((File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0) return candidate;
        }
        return null;
    }

    private static string FirstLine(string text)
    {
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        string line = (newline >= 0 ? text[..newline] : text).Trim();
        return line.Length > 200 ? line[..200] + "…" : line;
    }
}
