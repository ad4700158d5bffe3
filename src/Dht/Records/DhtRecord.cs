using System.Buffers.Binary;
using System.Text;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Records;

/// <summary>
/// One stored value: a key, an optional subkey (many hosts announce under one key, one subkey each), the
/// value bytes and an absolute expiration. Records whose key or subkey names an owner carry that owner's
/// public key and signature over (key, subkey, value, expiration); see <see cref="RecordOwnership"/>.
/// Immutable once made.
/// </summary>
public sealed class DhtRecord
{
    private DhtRecord(string key, string? subkey, ReadOnlyMemory<byte> value, DateTimeOffset expiration, ReadOnlyMemory<byte> publicKey, ReadOnlyMemory<byte> signature)
    {
        Key = key;
        Subkey = subkey;
        Value = value;
        Expiration = DateTimeOffset.FromUnixTimeMilliseconds(expiration.ToUnixTimeMilliseconds());
        PublicKey = publicKey;
        Signature = signature;
    }

    /// <summary>The key ("expert:ffn.3.14").</summary>
    public string Key { get; }

    /// <summary>The subkey, or null for a plain value.</summary>
    public string? Subkey { get; }

    /// <summary>The value bytes (protobuf chosen by the layer that owns the key).</summary>
    public ReadOnlyMemory<byte> Value { get; }

    /// <summary>When the record stops counting. A later expiration replaces an earlier one.</summary>
    public DateTimeOffset Expiration { get; }

    /// <summary>The signer's public key (SubjectPublicKeyInfo DER), empty when unsigned.</summary>
    public ReadOnlyMemory<byte> PublicKey { get; }

    /// <summary>ECDSA-SHA256 (IEEE P1363) over <see cref="SignedBytes"/>, empty when unsigned.</summary>
    public ReadOnlyMemory<byte> Signature { get; }

    /// <summary>Whether the record carries a signature.</summary>
    public bool IsSigned => !Signature.IsEmpty;

    /// <summary>An unsigned record (its key and subkey must not name an owner).</summary>
    public static DhtRecord Unsigned(string key, string? subkey, ReadOnlyMemory<byte> value, DateTimeOffset expiration) =>
        new(key, subkey, value, expiration, ReadOnlyMemory<byte>.Empty, ReadOnlyMemory<byte>.Empty);

    /// <summary>A record signed by <paramref name="signer"/>.</summary>
    public static DhtRecord Signed(string key, string? subkey, ReadOnlyMemory<byte> value, DateTimeOffset expiration, PeerIdentity signer)
    {
        var signature = signer.Sign(SignedBytes(key, subkey, value.Span, expiration));
        return new DhtRecord(key, subkey, value, expiration, signer.PublicKey, signature);
    }

    /// <summary>A record as it arrived from the network, not yet validated (see <see cref="RecordValidator"/>).</summary>
    public static DhtRecord FromWire(string key, string? subkey, ReadOnlyMemory<byte> value, DateTimeOffset expiration, ReadOnlyMemory<byte> publicKey, ReadOnlyMemory<byte> signature) =>
        new(key, subkey, value, expiration, publicKey, signature);

    /// <summary>Expirations travel as whole Unix milliseconds; this is the form that is signed.</summary>
    public long ExpirationUnixMs => Expiration.ToUnixTimeMilliseconds();

    /// <summary>
    /// The bytes a signature covers: "moemesh-dht-record-v1\0", then key, a subkey flag and subkey, and
    /// value, each with a u32 little-endian length, then the expiration as i64 Unix milliseconds. Binding
    /// all four means a signed value cannot be replayed under another key, subkey or expiration.
    /// </summary>
    public static byte[] SignedBytes(string key, string? subkey, ReadOnlySpan<byte> value, DateTimeOffset expiration)
    {
        var keyBytes = Encoding.UTF8.GetBytes(key);
        var subkeyBytes = Encoding.UTF8.GetBytes(subkey ?? "");
        var domain = "moemesh-dht-record-v1\0"u8;
        var bytes = new byte[domain.Length + 4 + keyBytes.Length + 1 + 4 + subkeyBytes.Length + 4 + value.Length + 8];
        var span = bytes.AsSpan();
        domain.CopyTo(span);
        span = span[domain.Length..];
        span = WithLength(span, keyBytes);
        span[0] = subkey is null ? (byte)0 : (byte)1;
        span = WithLength(span[1..], subkeyBytes);
        span = WithLength(span, value);
        BinaryPrimitives.WriteInt64LittleEndian(span, expiration.ToUnixTimeMilliseconds());
        return bytes;
    }

    /// <inheritdoc />
    public override string ToString() => Subkey is null ? $"{Key} (expires {Expiration:O})" : $"{Key}[{Subkey}] (expires {Expiration:O})";

    private static Span<byte> WithLength(Span<byte> destination, ReadOnlySpan<byte> bytes)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)bytes.Length);
        bytes.CopyTo(destination[4..]);
        return destination[(4 + bytes.Length)..];
    }
}
