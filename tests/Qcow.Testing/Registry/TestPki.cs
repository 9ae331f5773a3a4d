using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Qcow.Oci;

namespace Qcow.Testing.Registry;

/// <summary>A test CA and a server certificate it signs, written as PEM files.</summary>
public sealed record TestPki(string CaCertificatePath, string ServerCertificatePath, string ServerKeyPath)
{
    /// <summary>Makes the CA and a certificate for <paramref name="serverName"/> (and 127.0.0.1) in <paramref name="folder"/>.</summary>
    public static TestPki Create(string folder, string serverName)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=qcow test CA", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        using var ca = caRequest.CreateSelfSigned(now.AddDays(-1), now.AddDays(30));

        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={serverName}", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(serverName);
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        using var server = request.Create(ca, now.AddDays(-1), now.AddDays(30), [1, 2, 3, 4, 5, 6, 7, 8]);

        var pki = new TestPki(Path.Combine(folder, "ca.crt"), Path.Combine(folder, "server.crt"), Path.Combine(folder, "server.key"));
        File.WriteAllText(pki.CaCertificatePath, ca.ExportCertificatePem());
        File.WriteAllText(pki.ServerCertificatePath, server.ExportCertificatePem());
        File.WriteAllText(pki.ServerKeyPath, serverKey.ExportPkcs8PrivateKeyPem());
        return pki;
    }
}
