using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Qcow.Testing;
using Qcow.Oci;

namespace Qcow.Testing.Registry;

/// <summary>How a test registry authenticates.</summary>
public enum RegistryAuth
{
    /// <summary>Anonymous, plain HTTP.</summary>
    None,
    /// <summary>htpasswd (bcrypt) Basic auth over TLS with a certificate from a test CA.</summary>
    BasicOverTls,
    /// <summary>Bearer tokens from an in-process token server (docker-registry's token auth, test key pair).</summary>
    Token,
}

/// <summary>
/// A real registry, Debian's docker-registry (CNCF distribution 2.8), on 127.0.0.1 at a free port with its storage
/// in a temporary folder; stopped and deleted on dispose. Readiness is polled on /v2/ with a bounded loop.
/// </summary>
public sealed class RegistryServer : IDisposable
{
    public const string User = "ci-user";
    public const string Password = "s3cret-Pa55-not-for-logs";
    public const string ServerName = "qcow-registry.test";

    private readonly Process _process;
    private readonly TempDir _root = new("registry");
    private readonly StringBuilder _log = new();

    private RegistryServer(RegistryAuth auth)
    {
        Auth = auth;
        Port = FreePort();
        var config = new StringBuilder();
        config.AppendLine("version: 0.1");
        config.AppendLine("log:\n  level: warn");
        config.AppendLine($"storage:\n  filesystem:\n    rootdirectory: {_root["store"]}\n  delete:\n    enabled: true");
        config.AppendLine($"http:\n  addr: 127.0.0.1:{Port}\n  secret: test-secret");
        switch (auth)
        {
            case RegistryAuth.BasicOverTls:
                Pki = TestPki.Create(_root.Path, ServerName);
                config.AppendLine($"  tls:\n    certificate: {Pki.ServerCertificatePath}\n    key: {Pki.ServerKeyPath}");
                var htpasswd = Qemu.Run("htpasswd", ["-Bbn", User, Password], [0]);
                File.WriteAllText(_root["htpasswd"], htpasswd.StdOut);
                config.AppendLine($"auth:\n  htpasswd:\n    realm: qcow-test\n    path: {_root["htpasswd"]}");
                break;
            case RegistryAuth.Token:
                Tokens = new TokenServer(_root.Path, User, Password);
                config.AppendLine($"auth:\n  token:\n    realm: {Tokens.Realm}\n    service: {TokenServer.Service}\n    issuer: {TokenServer.Issuer}\n    rootcertbundle: {Tokens.CertificatePath}");
                break;
        }
        File.WriteAllText(_root["config.yml"], config.ToString());
        var psi = new ProcessStartInfo(Tools.Find("docker-registry")!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("serve");
        psi.ArgumentList.Add(_root["config.yml"]);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { lock (_log) _log.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        WaitUntilReady();
    }

    /// <summary>Starts a registry (call <see cref="Tools.Require"/> first).</summary>
    public static RegistryServer Start(RegistryAuth auth = RegistryAuth.None) => new(auth);

    public RegistryAuth Auth { get; }
    public int Port { get; }

    /// <summary><c>127.0.0.1:PORT</c>, or for TLS <c>qcow-registry.test:PORT</c> (see <see cref="Connect"/>).</summary>
    public string Host => Auth == RegistryAuth.BasicOverTls ? $"{ServerName}:{Port}" : $"127.0.0.1:{Port}";

    /// <summary>The test CA and server certificate (TLS only).</summary>
    public TestPki? Pki { get; }

    /// <summary>The token server (token auth only).</summary>
    public TokenServer? Tokens { get; }

    /// <summary>What the registry logged.</summary>
    public string Log { get { lock (_log) return _log.ToString(); } }

    /// <summary>A reference in this registry.</summary>
    public ImageReference Ref(string repositoryAndTag) => ImageReference.Parse($"{Host}/{repositoryAndTag}");

    /// <summary>
    /// Options that reach this registry. The TLS registry is named <see cref="ServerName"/> so the client takes the
    /// HTTPS path a remote registry takes; the connection itself always goes to 127.0.0.1.
    /// </summary>
    public RegistryOptions Options(CredentialSource? credentials = null, Func<HttpMessageHandler, HttpMessageHandler>? wrap = null, string? caFile = null) => new()
    {
        Credentials = credentials ?? CredentialSource.Anonymous,
        CaFile = caFile,
        WrapHandler = h =>
        {
            if (Auth == RegistryAuth.BasicOverTls) Connect((SocketsHttpHandler)h);
            return wrap is null ? h : wrap(h);
        },
        Delay = (_, _) => Task.CompletedTask,
    };

    /// <summary>Sends every connection to 127.0.0.1 whatever the host name: only loopback, ever.</summary>
    public static void Connect(SocketsHttpHandler handler) => handler.ConnectCallback = async (context, cancel) =>
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), cancel);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    };

    private void WaitUntilReady()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        string scheme = Auth == RegistryAuth.BasicOverTls ? "https" : "http";
        using var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        using var probe = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(2) };
        for (int attempt = 0; attempt < 200; attempt++)
        {
            if (_process.HasExited) throw new InvalidOperationException($"docker-registry exited {_process.ExitCode}:\n{Log}");
            try
            {
                using var r = probe.GetAsync($"{scheme}://127.0.0.1:{Port}/v2/").GetAwaiter().GetResult();
                if (r.StatusCode is HttpStatusCode.OK or HttpStatusCode.Unauthorized) return;
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            catch (TaskCanceledException)
            {
                // Not answering yet.
            }
            _process.WaitForExit(50);
        }
        throw new InvalidOperationException($"docker-registry did not answer on 127.0.0.1:{Port}/v2/:\n{Log}");
    }

    /// <summary>A loopback port nothing listens on (at the time of asking).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        _process.Dispose();
        Tokens?.Dispose();
        _root.Dispose();
    }
}
