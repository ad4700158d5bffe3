using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace MoEMesh.Protocol.Identity;

/// <summary>
/// A node's key pair (ECDSA P-256: Ed25519 is not available in .NET here) and the PeerId it implies.
/// The key lives in a PKCS#8 PEM file created on first start with mode 0600.
/// </summary>
public sealed class PeerIdentity : IDisposable
{
    private readonly ECDsa _key;
    private X509Certificate2? _certificate;

    private PeerIdentity(ECDsa key)
    {
        _key = key;
        PublicKey = key.ExportSubjectPublicKeyInfo();
        PeerId = PeerId.FromPublicKey(PublicKey);
    }

    /// <summary>SubjectPublicKeyInfo (DER).</summary>
    public byte[] PublicKey { get; }

    /// <summary>The node's id.</summary>
    public PeerId PeerId { get; }

    /// <summary>A fresh random identity (tests, tools).</summary>
    public static PeerIdentity Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>A deterministic identity from a seed, for reproducible test clusters only.</summary>
    public static PeerIdentity FromSeed(int seed)
    {
        // A P-256 private scalar from SHA-256(seed); valid with overwhelming probability, and checked by ImportParameters.
        var d = SHA256.HashData(BitConverter.GetBytes(seed));
        var key = ECDsa.Create(new ECParameters { Curve = ECCurve.NamedCurves.nistP256, D = d });
        return new PeerIdentity(key);
    }

    /// <summary>Loads the key file, or creates it (mode 0600) when it does not exist.</summary>
    /// <exception cref="InvalidDataException">The file exists but holds no ECDSA P-256 private key.</exception>
    public static PeerIdentity LoadOrCreate(string path)
    {
        if (File.Exists(path))
        {
            var key = ECDsa.Create();
            try
            {
                key.ImportFromPem(File.ReadAllText(path));
            }
            catch (Exception e) when (e is ArgumentException or CryptographicException)
            {
                key.Dispose();
                throw new InvalidDataException($"Key file {path} does not hold a PEM ECDSA private key: {e.Message}", e);
            }
            if (key.KeySize != 256)
            {
                key.Dispose();
                throw new InvalidDataException($"Key file {path} holds a {key.KeySize}-bit key; MoEMesh identities are ECDSA P-256.");
            }
            return new PeerIdentity(key);
        }
        var created = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(path, options))
        using (var writer = new StreamWriter(stream))
            writer.Write(created.ExportPkcs8PrivateKeyPem());
        return new PeerIdentity(created);
    }

    /// <summary>Signs <paramref name="data"/> (ECDSA-SHA256, IEEE P1363 format).</summary>
    public byte[] Sign(ReadOnlySpan<byte> data) => _key.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    /// <summary>Checks a signature made by the holder of <paramref name="publicKey"/>; false for any malformed input.</summary>
    public static bool Verify(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        try
        {
            using var key = ECDsa.Create();
            key.ImportSubjectPublicKeyInfo(publicKey, out _);
            return key.KeySize == 256 && key.VerifyData(data, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>A self-signed certificate over this key, for TLS. Made once per identity.</summary>
    public X509Certificate2 Certificate => _certificate ??= CreateCertificate();

    /// <inheritdoc />
    public void Dispose()
    {
        _certificate?.Dispose();
        _key.Dispose();
    }

    private X509Certificate2 CreateCertificate()
    {
        var request = new CertificateRequest($"CN={PeerId}", _key, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        using var selfSigned = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(10));
        // A round trip through PKCS#12 gives a certificate whose private key SslStream can use on every platform.
        return X509CertificateLoader.LoadPkcs12(selfSigned.Export(X509ContentType.Pkcs12), null);
    }
}
