using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace IpvlanCni.ClusterIpam.Tests;

/// <summary>
/// A throw-away certificate authority made in the test (no openssl): a CA, a server certificate for 127.0.0.1 that
/// etcd serves, a client certificate etcd's --client-cert-auth accepts, and a second CA that signed nothing of these
/// (the "wrong CA"). PEM files in a temporary folder, deleted with the fixture.
/// </summary>
public sealed class TestPki : IDisposable
{
    public string Directory { get; }
    public string CaFile => Path.Combine(Directory, "ca.pem");
    public string OtherCaFile => Path.Combine(Directory, "other-ca.pem");
    public string ServerCertFile => Path.Combine(Directory, "server.pem");
    public string ServerKeyFile => Path.Combine(Directory, "server-key.pem");
    public string ClientCertFile => Path.Combine(Directory, "client.pem");
    public string ClientKeyFile => Path.Combine(Directory, "client-key.pem");
    /// <summary>A client certificate signed by the other CA: etcd must refuse it.</summary>
    public string StrangerCertFile => Path.Combine(Directory, "stranger.pem");
    public string StrangerKeyFile => Path.Combine(Directory, "stranger-key.pem");

    const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    public TestPki()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("ipvlan-cni-pki-").FullName;
        using var ca = Authority("ipvlan-cni test CA");
        using var other = Authority("some other CA");
        File.WriteAllText(CaFile, ca.ExportCertificatePem());
        File.WriteAllText(OtherCaFile, other.ExportCertificatePem());
        Leaf(ca, "etcd", ServerAuth, ServerCertFile, ServerKeyFile, server: true);
        Leaf(ca, "ipvlan-cni-agent", ClientAuth, ClientCertFile, ClientKeyFile, server: false);
        Leaf(other, "stranger", ClientAuth, StrangerCertFile, StrangerKeyFile, server: false);
    }

    static X509Certificate2 Authority(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(1));
    }

    static void Leaf(X509Certificate2 ca, string name, string usage, string certFile, string keyFile, bool server)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
            request.CertificateExtensions.Add(names.Build());
        }
        var now = DateTimeOffset.UtcNow;
        using var cert = request.Create(ca, now.AddMinutes(-5), now.AddHours(12), RandomNumberGenerator.GetBytes(12));
        File.WriteAllText(certFile, cert.ExportCertificatePem());
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem());
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, true);
}
