using System.Globalization;
using Google.Protobuf;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Models;

namespace MoEMesh.Routing.Directory;

/// <summary>
/// The DHT key schema Routing owns, as rules every node enforces on what it stores and what it believes
/// from others (registered with the DHT node). Each key of the schema holds subkey entries only, each
/// signed by the host its subkey names (the DHT checks that signature), so nobody can overwrite, wipe or
/// hide another host's entry:
/// <list type="bullet">
/// <item><c>expert:&lt;uid&gt;</c>: subkey the host's PeerId, value an <see cref="ExpertRecord"/>.</item>
/// <item><c>prefix:&lt;uid prefix&gt;</c>: subkey <c>&lt;coordinate&gt;:&lt;host PeerId&gt;</c>, value the uid (UTF-8) the host
/// serves below the prefix at that coordinate.</item>
/// <item><c>model:&lt;name&gt;</c>: subkey the holder's PeerId, value a <see cref="ModelRecord"/> of that model.</item>
/// <item><c>models</c>: subkey <c>&lt;name&gt;:&lt;holder PeerId&gt;</c>, value the same record.</item>
/// <item><c>weights:&lt;uid&gt;</c>: subkey the holder's PeerId, value a <see cref="WeightsRecord"/> of that uid.</item>
/// </list>
/// Values are bounded (<see cref="MaxRecordBytes"/>) and must parse; keys outside the schema are not its concern.
/// </summary>
public sealed class KeySchema : IRecordSchema
{
    /// <summary>Largest value of a schema key: a record lists a few addresses and a signature, no more.</summary>
    public const int MaxRecordBytes = 4096;

    /// <summary>Most addresses one record may list.</summary>
    public const int MaxAddresses = 8;

    /// <inheritdoc />
    public string? Check(DhtRecord record)
    {
        var key = record.Key;
        if (key.StartsWith(ExpertDirectory.ExpertKeyPrefix, StringComparison.Ordinal)) return CheckExpert(record);
        if (key.StartsWith(ExpertDirectory.PrefixKeyPrefix, StringComparison.Ordinal)) return CheckPrefix(record);
        if (key.StartsWith(Weights.WeightsDirectory.KeyPrefix, StringComparison.Ordinal)) return CheckWeights(record);
        if (key.StartsWith(ModelDirectory.ModelKeyPrefix, StringComparison.Ordinal)) return CheckModel(record, key[ModelDirectory.ModelKeyPrefix.Length..], record.Subkey);
        if (key == ModelDirectory.IndexKey)
        {
            int colon = record.Subkey?.LastIndexOf(':') ?? -1;
            return colon <= 0 ? $"'{key}' entries have the subkey <model name>:<holder PeerId>" : CheckModel(record, record.Subkey![..colon], record.Subkey[(colon + 1)..]);
        }
        return null;
    }

    private static string? CheckExpert(DhtRecord record)
    {
        if (!ExpertUid.TryParse(record.Key[ExpertDirectory.ExpertKeyPrefix.Length..], out _, out var error)) return $"'{record.Key}' is not an expert key: {error}";
        if (Common(record, record.Subkey) is { } problem) return problem;
        if (Parse(record, ExpertRecord.Parser) is not { } expert) return $"the value under '{record.Key}' is not an ExpertRecord";
        if (Addresses(expert.Addresses) is { } bad) return $"the ExpertRecord under '{record.Key}' {bad}";
        if (expert.Type.Length is < 1 or > 64 || expert.SchemaHash.Length is < 1 or > 64) return $"the ExpertRecord under '{record.Key}' needs a type and a schema hash of 1 to 64 characters";
        return null;
    }

    private static string? CheckWeights(DhtRecord record)
    {
        var uid = record.Key[Weights.WeightsDirectory.KeyPrefix.Length..];
        if (!ExpertUid.TryParse(uid, out _, out var error)) return $"'{record.Key}' is not a weights key: {error}";
        if (Common(record, record.Subkey) is { } problem) return problem;
        if (Parse(record, WeightsRecord.Parser) is not { } weights) return $"the value under '{record.Key}' is not a WeightsRecord";
        if (Addresses(weights.Addresses) is { } bad) return $"the WeightsRecord under '{record.Key}' {bad}";
        var s = weights.Snapshot;
        if (s is null || s.Uid != uid) return $"the WeightsRecord under '{record.Key}' does not carry a snapshot of {uid}";
        if (s.Sha256.Length != 64 || !s.Sha256.All(char.IsAsciiHexDigitLower) || s.Size > long.MaxValue || s.SchemaHash.Length is < 1 or > 64)
            return $"the snapshot under '{record.Key}' needs a lower-case hex SHA-256, a size a file can have and a schema hash of 1 to 64 characters";
        return null;
    }

    private static string? CheckPrefix(DhtRecord record)
    {
        if (!ExpertPrefix.TryParse(record.Key[ExpertDirectory.PrefixKeyPrefix.Length..], out var prefix, out var error)) return $"'{record.Key}' is not a prefix key: {error}";
        int colon = record.Subkey?.IndexOf(':') ?? -1;
        if (colon <= 0 || !int.TryParse(record.Subkey![..colon], NumberStyles.None, CultureInfo.InvariantCulture, out int coordinate))
            return $"'{record.Key}' entries have the subkey <coordinate>:<host PeerId>";
        if (Common(record, record.Subkey[(colon + 1)..]) is { } problem) return problem;
        if (!ExpertUid.TryParse(System.Text.Encoding.UTF8.GetString(record.Value.Span), out var uid, out _) || !prefix.Leads(coordinate, uid))
            return $"the value under '{record.Key}' subkey '{record.Subkey}' is not a uid below {prefix.Value} at coordinate {coordinate}";
        return null;
    }

    private static string? CheckModel(DhtRecord record, string name, string? holder)
    {
        if (!ModelFile.IsValidName(name, out var error)) return $"'{record.Key}': {error}";
        if (Common(record, holder) is { } problem) return problem;
        if (Parse(record, ModelRecord.Parser) is not { } model) return $"the value under '{record.Key}' is not a ModelRecord";
        if (Addresses(model.Addresses) is { } bad) return $"the ModelRecord under '{record.Key}' {bad}";
        var p = model.Publication;
        if (p is null || p.Name != name) return $"the ModelRecord under '{record.Key}' does not carry a publication of {name}";
        if (p.Sha256.Length != 64 || !p.Sha256.All(char.IsAsciiHexDigitLower) || p.Size > long.MaxValue)
            return $"the publication under '{record.Key}' needs a lower-case hex SHA-256 and a size a file can have";
        return null;
    }

    /// <summary>Every schema entry: a subkey naming its host (whose signature the DHT requires), a bounded value.</summary>
    private static string? Common(DhtRecord record, string? host)
    {
        if (record.Subkey is null || !PeerId.TryParse(host, out _)) return $"'{record.Key}' holds only entries whose subkey names their host's PeerId";
        if (record.Value.Length > MaxRecordBytes) return $"the value under '{record.Key}' has {record.Value.Length} bytes; at most {MaxRecordBytes}";
        return null;
    }

    private static T? Parse<T>(DhtRecord record, MessageParser<T> parser) where T : class, IMessage<T>
    {
        try
        {
            return parser.ParseFrom(record.Value.Span);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    private static string? Addresses(IReadOnlyCollection<string> addresses) =>
        addresses.Count is < 1 or > MaxAddresses ? $"lists {addresses.Count} addresses; 1 to {MaxAddresses} are allowed"
        : addresses.All(a => PeerAddress.TryParse(a, out _)) ? null : "lists an address that is not host:port";
}
