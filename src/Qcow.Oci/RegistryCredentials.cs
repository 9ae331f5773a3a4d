using System.Text;

namespace Qcow.Oci;

/// <summary>
/// A user name and password (or token) for one registry. A user name of <see cref="IdentityTokenUser"/> means the
/// password is an identity token (a refresh token for the registry's OAuth2 token endpoint), as docker's credential
/// helpers and <c>identitytoken</c> entries hand it over. <see cref="ToString"/> never shows the secret.
/// </summary>
public sealed record RegistryCredentials(string UserName, string Password)
{
    /// <summary>The user name docker's credential helpers give with an identity token.</summary>
    public const string IdentityTokenUser = "<token>";

    /// <summary>True when <see cref="Password"/> is an identity token rather than a password.</summary>
    public bool IsIdentityToken => UserName == IdentityTokenUser;

    /// <summary>The value of a Basic Authorization header.</summary>
    internal string BasicParameter => Convert.ToBase64String(Encoding.UTF8.GetBytes($"{UserName}:{Password}"));

    /// <inheritdoc />
    public override string ToString() => $"{UserName}:***";
}
