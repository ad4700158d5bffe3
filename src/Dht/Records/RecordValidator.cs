using MoEMesh.Protocol.Identity;

namespace MoEMesh.Dht.Records;

/// <summary>
/// Decides whether a record may be stored or believed: sizes, expiration in (now, now + MaxTtl], and
/// signatures. A record whose key or subkey names an owner must be signed by that owner; a signature
/// that is present must verify. Then every registered <see cref="IRecordSchema"/> has its say (the
/// owner of a key's meaning decides what may be stored under it). Rejected on store, ignored on find.
/// </summary>
public sealed class RecordValidator(DhtOptions options, IReadOnlyList<IRecordSchema>? schemas = null)
{
    private readonly IReadOnlyList<IRecordSchema> _schemas = schemas ?? [];

    /// <summary>Longest key or subkey, in characters.</summary>
    public const int MaxKeyLength = 512;

    /// <summary>Why <paramref name="record"/> is not acceptable at <paramref name="now"/>, or null when it is.</summary>
    public string? Check(DhtRecord record, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(record.Key)) return "the key is empty";
        if (record.Key.Length > MaxKeyLength) return $"key of {record.Key.Length} characters exceeds {MaxKeyLength}";
        if (record.Subkey is { Length: > MaxKeyLength }) return $"subkey of {record.Subkey.Length} characters exceeds {MaxKeyLength}";
        if (record.Value.Length > options.MaxValueBytes) return $"value of {record.Value.Length} bytes exceeds {options.MaxValueBytes}";
        if (record.Expiration <= now) return $"expired at {record.Expiration:O}, now is {now:O}";
        if (record.Expiration > now + options.MaxTtl)
            return $"expiration {record.Expiration:O} is more than MaxTtl ({options.MaxTtl.TotalSeconds:F0} s) ahead of {now:O}";
        var keyOwner = RecordOwnership.OwnerOf(record.Key);
        var subkeyOwner = RecordOwnership.OwnerOf(record.Subkey);
        if (keyOwner is { } k && subkeyOwner is { } s && k != s) return $"key names owner {k} but subkey names owner {s}";
        var owner = keyOwner ?? subkeyOwner;
        foreach (var schema in _schemas)
            if (schema.Check(record) is { } broken) return broken;
        if (owner is null && !record.IsSigned) return null;
        if (!record.IsSigned) return $"{Describe(record)} names owner {owner} and must carry its signature";
        if (owner is { } o && !o.Matches(record.PublicKey.Span)) return $"{Describe(record)} names owner {o} but is signed by {PeerId.FromPublicKey(record.PublicKey.Span)}";
        var signed = DhtRecord.SignedBytes(record.Key, record.Subkey, record.Value.Span, record.Expiration);
        return PeerIdentity.Verify(record.PublicKey.Span, signed, record.Signature.Span) ? null : $"the signature on {Describe(record)} does not verify";
    }

    private static string Describe(DhtRecord record) => record.Subkey is null ? $"key '{record.Key}'" : $"key '{record.Key}' subkey '{record.Subkey}'";
}
