namespace Qcow.Oci;

/// <summary>One challenge of a <c>WWW-Authenticate</c> header: a scheme and its parameters (RFC 7235).</summary>
public sealed record AuthChallenge(string Scheme, IReadOnlyDictionary<string, string> Parameters)
{
    /// <summary>A parameter's value, or null.</summary>
    public string? this[string name] => Parameters.TryGetValue(name, out var v) ? v : null;

    /// <summary>Parses the challenges of one header value, e.g. <c>Bearer realm="…",service="…",scope="…"</c>.</summary>
    public static IReadOnlyList<AuthChallenge> Parse(string header)
    {
        var result = new List<AuthChallenge>();
        int i = 0;
        string? scheme = null;
        var parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        while (i < header.Length)
        {
            while (i < header.Length && (header[i] == ' ' || header[i] == ',')) i++;
            int start = i;
            while (i < header.Length && header[i] != ' ' && header[i] != ',' && header[i] != '=') i++;
            string token = header[start..i];
            if (token.Length == 0) break;
            if (i < header.Length && header[i] == '=')
            {
                i++;
                string value;
                if (i < header.Length && header[i] == '"')
                {
                    var sb = new System.Text.StringBuilder();
                    i++;
                    while (i < header.Length && header[i] != '"')
                    {
                        if (header[i] == '\\' && i + 1 < header.Length) i++;
                        sb.Append(header[i++]);
                    }
                    i++;
                    value = sb.ToString();
                }
                else
                {
                    int vs = i;
                    while (i < header.Length && header[i] != ',') i++;
                    value = header[vs..i].Trim();
                }
                if (scheme is not null) parameters[token] = value;
            }
            else
            {
                if (scheme is not null) result.Add(new AuthChallenge(scheme, parameters));
                scheme = token;
                parameters = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            }
        }
        if (scheme is not null) result.Add(new AuthChallenge(scheme, parameters));
        return result;
    }
}
