using System.Security.Cryptography;

namespace MoEMesh.Protocol.Identity;

/// <summary>
/// A node's identity in the network: the base58 text of the SHA-256 of its public key
/// (SubjectPublicKeyInfo DER). Anyone holding the public key can check a claimed PeerId.
/// </summary>
public readonly record struct PeerId
{
    private readonly byte[]? _hash;

    private PeerId(byte[] hash)
    {
        _hash = hash;
        Text = Base58.Encode(hash);
    }

    /// <summary>The 32-byte SHA-256 of the public key.</summary>
    public ReadOnlySpan<byte> Hash => _hash ?? throw new InvalidOperationException("An empty PeerId has no hash.");

    /// <summary>The base58 text.</summary>
    public string Text { get; }

    /// <summary>The PeerId of a public key.</summary>
    public static PeerId FromPublicKey(ReadOnlySpan<byte> subjectPublicKeyInfo) => new(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>The PeerId with this 32-byte hash (an id learned without its key, such as a simulated node's).</summary>
    /// <exception cref="ArgumentException">The hash is not 32 bytes.</exception>
    public static PeerId FromHash(ReadOnlySpan<byte> hash) =>
        hash.Length == 32 ? new PeerId(hash.ToArray()) : throw new ArgumentException($"A PeerId hash has 32 bytes; got {hash.Length}.", nameof(hash));

    /// <summary>Parses base58 text; false unless it decodes to 32 bytes.</summary>
    public static bool TryParse(string? text, out PeerId peerId)
    {
        peerId = default;
        if (string.IsNullOrEmpty(text) || text.Length > 64 || !Base58.TryDecode(text, out var hash) || hash.Length != 32) return false;
        peerId = new PeerId(hash);
        return true;
    }

    /// <summary>Parses base58 text.</summary>
    /// <exception cref="FormatException">The text is not a PeerId; the message shows it.</exception>
    public static PeerId Parse(string text) =>
        TryParse(text, out var id) ? id : throw new FormatException($"'{text}' is not a PeerId (base58 of a 32-byte SHA-256).");

    /// <summary>Whether <paramref name="subjectPublicKeyInfo"/> is the key this id names.</summary>
    public bool Matches(ReadOnlySpan<byte> subjectPublicKeyInfo) => _hash is not null && SHA256.HashData(subjectPublicKeyInfo).AsSpan().SequenceEqual(_hash);

    /// <summary>Value equality on the hash.</summary>
    public bool Equals(PeerId other) => Text == other.Text;

    /// <inheritdoc />
    public override int GetHashCode() => Text?.GetHashCode(StringComparison.Ordinal) ?? 0;

    /// <inheritdoc />
    public override string ToString() => Text ?? "(none)";
}
