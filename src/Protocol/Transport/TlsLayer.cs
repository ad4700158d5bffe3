using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Protocol.Transport;

/// <summary>
/// TLS 1.3 between nodes with self-signed certificates made from node keys. Certificates are not checked
/// against any authority (there is none); instead, after the peer handshake, the certificate's key must
/// be the key the peer proved it holds, which binds the encrypted channel to the PeerId.
/// </summary>
internal static class TlsLayer
{
    public static async Task<SslStream> AuthenticateAsync(Stream stream, bool asServer, PeerIdentity identity, CancellationToken cancellationToken)
    {
        var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
        try
        {
            if (asServer)
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = identity.Certificate,
                    ClientCertificateRequired = true,
                    EnabledSslProtocols = SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
                }, cancellationToken);
            else
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "moemesh",
                    ClientCertificates = [identity.Certificate],
                    EnabledSslProtocols = SslProtocols.Tls13,
                    RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
                }, cancellationToken);
            return ssl;
        }
        catch
        {
            await ssl.DisposeAsync();
            throw;
        }
    }

    /// <summary>Throws unless the TLS peer's certificate carries <paramref name="provenKey"/>.</summary>
    public static void RequireSameKey(SslStream ssl, byte[] provenKey, PeerId peer)
    {
        using var certificate = ssl.RemoteCertificate is { } c ? new X509Certificate2(c) : null;
        using var key = certificate?.GetECDsaPublicKey();
        if (key is null || !key.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(provenKey))
            throw new HandshakeException($"the TLS certificate of {peer} does not carry the key it proved in the handshake");
    }
}
