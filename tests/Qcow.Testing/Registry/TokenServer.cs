using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Qcow.Oci;

namespace Qcow.Testing.Registry;

/// <summary>
/// A token server on 127.0.0.1 for docker-registry's token auth: GET /token?service=…&amp;scope=… with the right
/// Basic credentials returns a JWT (RS256, the signing certificate in x5c) granting the scopes asked for; anything
/// else is 401. The registry trusts the certificate through its rootcertbundle.
/// </summary>
public sealed class TokenServer : IDisposable
{
    public const string Service = "qcow-test-registry";
    public const string Issuer = "qcow-test-token-issuer";

    private readonly HttpListener _listener = new();
    private readonly RSA _key = RSA.Create(2048);
    private readonly X509Certificate2 _certificate;
    private readonly string _user;
    private readonly string _password;
    private readonly Task _loop;

    public TokenServer(string folder, string user, string password)
    {
        _user = user;
        _password = password;
        var request = new CertificateRequest("CN=qcow test token signer", _key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        _certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        CertificatePath = Path.Combine(folder, "token-signer.crt");
        File.WriteAllText(CertificatePath, _certificate.ExportCertificatePem());
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Realm = $"http://127.0.0.1:{port}/token";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/token/");
        _listener.Start();
        _loop = Task.Run(ServeAsync);
    }

    /// <summary>The realm the registry names in its challenges.</summary>
    public string Realm { get; }

    /// <summary>PEM of the signing certificate (the registry's rootcertbundle).</summary>
    public string CertificatePath { get; }

    /// <summary>Scopes of every token issued, in order.</summary>
    public ConcurrentQueue<string> Issued { get; } = new();

    /// <summary>The identity token (OAuth2 refresh token) the server accepts in the refresh-token grant.</summary>
    public const string IdentityToken = "idt-Refresh-7c1e-not-for-logs";

    /// <summary>Tokens issued through the refresh-token grant.</summary>
    public int RefreshGrants => _refreshGrants;

    private int _refreshGrants;

    /// <summary>Requests refused for missing or wrong credentials.</summary>
    public int Refused => _refused;

    private int _refused;

    private async Task ServeAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            using var response = context.Response;
            string[] scopes;
            object answer;
            if (context.Request.HttpMethod == "POST")
            {
                // The OAuth2 refresh-token grant (docker's, with an identity token): form fields, access_token back.
                using var reader = new StreamReader(context.Request.InputStream, Encoding.UTF8);
                var form = System.Web.HttpUtility.ParseQueryString(await reader.ReadToEndAsync());
                if (form["grant_type"] != "refresh_token" || form["refresh_token"] != IdentityToken || form["service"] != Service || string.IsNullOrEmpty(form["client_id"]))
                {
                    Interlocked.Increment(ref _refused);
                    response.StatusCode = 401;
                    continue;
                }
                scopes = (form["scope"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
                Interlocked.Increment(ref _refreshGrants);
                answer = new { access_token = Jwt(scopes), expires_in = 300, scope = form["scope"] };
            }
            else
            {
                string expected = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes($"{_user}:{_password}"));
                if (context.Request.Headers["Authorization"] != expected || context.Request.QueryString["service"] != Service)
                {
                    Interlocked.Increment(ref _refused);
                    response.StatusCode = 401;
                    continue;
                }
                scopes = context.Request.QueryString.GetValues("scope") ?? [];
                answer = new { token = Jwt(scopes), expires_in = 300 };
            }
            Issued.Enqueue(string.Join(' ', scopes));
            byte[] body = JsonSerializer.SerializeToUtf8Bytes(answer);
            response.ContentType = "application/json";
            await response.OutputStream.WriteAsync(body);
        }
    }

    private string Jwt(string[] scopes)
    {
        var header = new Dictionary<string, object> { ["alg"] = "RS256", ["typ"] = "JWT", ["x5c"] = new[] { Convert.ToBase64String(_certificate.RawData) } };
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var access = scopes.Select(s => s.Split(':')).Where(p => p.Length == 3)
            .Select(p => new { type = p[0], name = p[1], actions = p[2].Split(',') }).ToArray();
        var claims = new Dictionary<string, object>
        {
            ["iss"] = Issuer, ["sub"] = _user, ["aud"] = Service, ["exp"] = now + 300, ["nbf"] = now - 60, ["iat"] = now - 60,
            ["jti"] = Guid.NewGuid().ToString("N"), ["access"] = access,
        };
        string signingInput = $"{Base64Url(JsonSerializer.SerializeToUtf8Bytes(header))}.{Base64Url(JsonSerializer.SerializeToUtf8Bytes(claims))}";
        byte[] signature = _key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return $"{signingInput}.{Base64Url(signature)}";
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <inheritdoc />
    public void Dispose()
    {
        _listener.Close();
        // Closing the listener ends the loop's pending accept, so the loop ends without a timeout.
        try { _loop.Wait(); } catch (AggregateException) { }
        _certificate.Dispose();
        _key.Dispose();
    }
}
