using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;

namespace Qcow.Oci;

/// <summary>
/// The HTTP side of one registry: scheme and trust, the authentication handshake (Basic, or Bearer tokens fetched from
/// the realm the registry names), and bounded retries of transient failures. Authorization values never appear in
/// messages.
/// </summary>
public sealed class RegistryClient : IDisposable
{
    private readonly HttpClient _http;
    private readonly RegistryOptions _options;
    private readonly RetryPolicy _retry;
    private readonly Lazy<RegistryCredentials?> _credentials;
    // Blobs upload concurrently: the authorization in use and the tokens per scope are shared, and one challenge at a
    // time is answered (a second request refused with the same authorization takes the token the first one fetched).
    private volatile AuthenticationHeaderValue? _authorization;
    private readonly Dictionary<string, AuthenticationHeaderValue> _tokens = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _challenge = new(1, 1);

    /// <summary>A client for <paramref name="registry"/> (<c>host[:port]</c>).</summary>
    public RegistryClient(string registry, RegistryOptions options)
    {
        Registry = registry;
        _options = options;
        _retry = new RetryPolicy(options);
        BaseUri = new Uri($"{(options.IsPlainHttp(registry) ? "http" : "https")}://{registry}/");
        _credentials = new Lazy<RegistryCredentials?>(() => options.Credentials.Find(registry));
        var sockets = new SocketsHttpHandler { AllowAutoRedirect = true, MaxAutomaticRedirections = 10, ConnectTimeout = TimeSpan.FromSeconds(30) };
        if (options.CaFile is { } caFile) sockets.SslOptions.RemoteCertificateValidationCallback = TrustAlso(LoadCertificates(caFile));
        HttpMessageHandler handler = options.WrapHandler is { } wrap ? wrap(sockets) : sockets;
        _http = new HttpClient(handler) { Timeout = options.RequestTimeout };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("qcow", "1"));
    }

    /// <summary>The registry, <c>host[:port]</c>.</summary>
    public string Registry { get; }

    /// <summary><c>http://host[:port]/</c> or <c>https://…</c>.</summary>
    public Uri BaseUri { get; }

    internal RetryPolicy Retry => _retry;

    internal RegistryOptions Options => _options;

    /// <summary>
    /// Sends the request <paramref name="make"/> builds (called again for each attempt), answering an authentication
    /// challenge once, and retrying transient failures when <paramref name="retry"/>. Returns the last response
    /// whatever its status; a request that never got one is a <see cref="RegistryException"/> about <paramref name="subject"/>.
    /// </summary>
    internal async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> make, string subject, CancellationToken cancel,
        bool retry = true, HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        int failures = 0;
        bool answered = false;
        while (true)
        {
            using var request = make();
            request.Headers.Authorization ??= _authorization;
            var sent = request.Headers.Authorization;
            HttpResponseMessage response;
            try
            {
                response = await _http.SendAsync(request, completion, cancel).ConfigureAwait(false);
            }
            catch (Exception e) when (RetryPolicy.IsTransient(e, cancel))
            {
                if (!retry) throw new TransientFailure(Describe(e), e);
                if (!_retry.CanRetry(++failures))
                    throw new RegistryException(subject, $"cannot reach {Registry}: {Describe(e)}", e);
                await _retry.WaitAsync(failures, cancel).ConfigureAwait(false);
                continue;
            }
            catch (HttpRequestException e)
            {
                throw new RegistryException(subject, $"cannot reach {Registry}: {Describe(e)}", e);
            }
            if (response.StatusCode == HttpStatusCode.Unauthorized && !answered
                && await AnswerChallengeAsync(response, sent, subject, cancel).ConfigureAwait(false))
            {
                answered = true;
                response.Dispose();
                continue;
            }
            if (retry && RetryPolicy.IsTransient(response.StatusCode) && _retry.CanRetry(++failures))
            {
                response.Dispose();
                await _retry.WaitAsync(failures, cancel).ConfigureAwait(false);
                continue;
            }
            return response;
        }
    }

    /// <summary>Throws a <see cref="RegistryException"/> for a response that is not one of <paramref name="expected"/>.</summary>
    internal static async Task EnsureAsync(HttpResponseMessage response, string subject, string what, params HttpStatusCode[] expected)
    {
        if (expected.Contains(response.StatusCode)) return;
        string detail = await ErrorDetailAsync(response).ConfigureAwait(false);
        string hint = response.StatusCode switch
        {
            HttpStatusCode.Unauthorized => $" (authentication required or refused: set {CredentialSource.UserNameVariable}/{CredentialSource.PasswordVariable} or log in with docker)",
            HttpStatusCode.Forbidden => " (access denied)",
            _ => "",
        };
        throw new RegistryException(subject, $"{what}: {(int)response.StatusCode} {response.ReasonPhrase}{detail}{hint}");
    }

    /// <summary>The URI of <c>/v2/&lt;repository&gt;/&lt;path&gt;</c>.</summary>
    internal Uri V2(string repository, string path) => new(BaseUri, $"v2/{repository}/{path}");

    /// <summary>Resolves a Location header (absolute or relative) against the registry.</summary>
    internal Uri Resolve(Uri? location, string subject) =>
        location is null ? throw new RegistryException(subject, "the registry sent no Location for the upload")
            : location.IsAbsoluteUri ? location : new Uri(BaseUri, location);

    private async Task<bool> AnswerChallengeAsync(HttpResponseMessage response, AuthenticationHeaderValue? sent, string subject, CancellationToken cancel)
    {
        var challenges = response.Headers.WwwAuthenticate.SelectMany(h => AuthChallenge.Parse(h.ToString())).ToList();
        await _challenge.WaitAsync(cancel).ConfigureAwait(false);
        try
        {
            var credentials = _credentials.Value;
            if (challenges.FirstOrDefault(c => c.Scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase)) is { } bearer)
            {
                string scope = bearer["scope"] ?? "";
                if (_tokens.TryGetValue(scope, out var cached) && !Equals(cached, sent))
                {
                    _authorization = cached;
                    return true;
                }
                var token = await FetchTokenAsync(bearer, credentials, subject, cancel).ConfigureAwait(false);
                _tokens[scope] = token;
                _authorization = token;
                return true;
            }
            // Basic needs a user and a password: an identity token is only good for the token endpoint (as in docker).
            if (challenges.Any(c => c.Scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase)) && credentials is { IsIdentityToken: false }
                && sent?.Scheme != "Basic")
            {
                _authorization = new AuthenticationHeaderValue("Basic", credentials.BasicParameter);
                return true;
            }
            return false;
        }
        finally
        {
            _challenge.Release();
        }
    }

    /// <summary>
    /// The token handshake: GET realm?service=…&amp;scope=… (with Basic credentials if any) → token; with an identity
    /// token, the OAuth2 refresh-token grant instead, as docker does: POST realm with grant_type=refresh_token,
    /// refresh_token, service, scope and client_id → access_token.
    /// </summary>
    private async Task<AuthenticationHeaderValue> FetchTokenAsync(AuthChallenge bearer, RegistryCredentials? credentials, string subject, CancellationToken cancel)
    {
        string realm = bearer["realm"] ?? throw new RegistryException(subject, $"{Registry} asked for a bearer token without a realm");
        if (!Uri.TryCreate(realm, UriKind.Absolute, out var realmUri) || realmUri.Scheme is not ("https" or "http"))
            throw new RegistryException(subject, $"{Registry} named a token realm that is not an http(s) URL");
        var query = new List<string>();
        if (bearer["service"] is { } service) query.Add($"service={Uri.EscapeDataString(service)}");
        foreach (string scope in (bearer["scope"] ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries))
            query.Add($"scope={Uri.EscapeDataString(scope)}");
        var uri = new UriBuilder(realmUri) { Query = string.Join('&', query) }.Uri;
        using var response = await SendPlainAsync(() =>
        {
            if (credentials is { IsIdentityToken: true })
                return new HttpRequestMessage(HttpMethod.Post, realmUri) { Content = new FormUrlEncodedContent(RefreshGrant(bearer, credentials.Password)) };
            var request = new HttpRequestMessage(HttpMethod.Get, uri);
            if (credentials is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Basic", credentials.BasicParameter);
            return request;
        }, subject, cancel).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new RegistryException(subject, $"{(credentials is { IsIdentityToken: true } ? "identity token (refresh_token grant) " : "")}token request to {realmUri.GetLeftPart(UriPartial.Path)} failed: {(int)response.StatusCode} {response.ReasonPhrase}"
                + (credentials is null ? $" (no credentials: set {CredentialSource.UserNameVariable}/{CredentialSource.PasswordVariable} or log in with docker)" : ""));
        try
        {
            using var doc = JsonDocument.Parse(await response.Content.ReadAsByteArrayAsync(cancel).ConfigureAwait(false));
            string? token = doc.RootElement.TryGetProperty("token", out var t) ? t.GetString()
                : doc.RootElement.TryGetProperty("access_token", out var a) ? a.GetString() : null;
            if (string.IsNullOrEmpty(token)) throw new RegistryException(subject, "the token server's answer holds no token");
            return new AuthenticationHeaderValue("Bearer", token);
        }
        catch (JsonException)
        {
            throw new RegistryException(subject, "the token server's answer is not JSON");
        }
    }

    /// <summary>The form of the OAuth2 refresh-token grant (docker's fields; the client is named qcow).</summary>
    private static List<KeyValuePair<string, string>> RefreshGrant(AuthChallenge bearer, string refreshToken)
    {
        var form = new List<KeyValuePair<string, string>> { new("grant_type", "refresh_token"), new("refresh_token", refreshToken), new("client_id", "qcow") };
        if (bearer["service"] is { } service) form.Add(new("service", service));
        if (bearer["scope"] is { Length: > 0 } scope) form.Add(new("scope", scope));
        return form;
    }

    /// <summary>A request outside the registry's authentication (the token realm), with the same retries.</summary>
    private async Task<HttpResponseMessage> SendPlainAsync(Func<HttpRequestMessage> make, string subject, CancellationToken cancel)
    {
        int failures = 0;
        while (true)
        {
            try
            {
                using var request = make();
                var response = await _http.SendAsync(request, cancel).ConfigureAwait(false);
                if (!RetryPolicy.IsTransient(response.StatusCode) || !_retry.CanRetry(++failures)) return response;
                response.Dispose();
            }
            catch (Exception e) when (RetryPolicy.IsTransient(e, cancel))
            {
                if (!_retry.CanRetry(++failures)) throw new RegistryException(subject, $"cannot reach the token server: {Describe(e)}", e);
            }
            await _retry.WaitAsync(failures, cancel).ConfigureAwait(false);
        }
    }

    private static async Task<string> ErrorDetailAsync(HttpResponseMessage response)
    {
        try
        {
            byte[] body = await response.Content.ReadAsByteArrayAsync().ConfigureAwait(false);
            if (body.Length is 0 or > 65536) return "";
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("errors", out var errors) && errors.ValueKind == JsonValueKind.Array)
                return string.Concat(errors.EnumerateArray().Take(3).Select(e =>
                    $"; {(e.TryGetProperty("code", out var c) ? c.GetString() : "")}: {(e.TryGetProperty("message", out var m) ? m.GetString() : "")}"));
        }
        catch (Exception e) when (e is JsonException or HttpRequestException or IOException or InvalidOperationException)
        {
            // Not a distribution error body: the status says enough.
        }
        return "";
    }

    private static string Describe(Exception e)
    {
        if (RetryPolicy.IsTlsFailure(e)) return $"TLS: the certificate is not trusted or does not match (for a private CA pass --ca-file): {Innermost(e).Message}";
        return Innermost(e).Message;
    }

    private static Exception Innermost(Exception e)
    {
        while (e.InnerException is not null) e = e.InnerException;
        return e;
    }

    private static X509Certificate2Collection LoadCertificates(string caFile)
    {
        var certificates = new X509Certificate2Collection();
        try
        {
            certificates.ImportFromPemFile(caFile);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException)
        {
            throw new RegistryException(caFile, $"cannot read the CA file: {e.Message}");
        }
        if (certificates.Count == 0) throw new RegistryException(caFile, "the CA file holds no PEM certificate");
        return certificates;
    }

    /// <summary>Accepts what the system trusts, and chains that end in one of <paramref name="roots"/> for the right name.</summary>
    private static RemoteCertificateValidationCallback TrustAlso(X509Certificate2Collection roots) => (_, certificate, chain, errors) =>
    {
        if (errors == SslPolicyErrors.None) return true;
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0) return false;
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(roots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain is not null) custom.ChainPolicy.ExtraStore.AddRange(chain.ChainPolicy.ExtraStore);
        return custom.Build(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
    };

    /// <inheritdoc />
    public void Dispose()
    {
        _http.Dispose();
        _challenge.Dispose();
    }
}
