using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Routing.Directory;

/// <summary>
/// The shape both directories share: one signed entry per host under a key, the subkey being the host's
/// PeerId and the value a protobuf record listing the host's addresses.
/// </summary>
internal static class HostEntries
{
    /// <summary>Signed records announcing <paramref name="entries"/> for <paramref name="host"/>.</summary>
    public static Task<IReadOnlyList<DhtStoreResult>> DeclareAsync(IDht dht, PeerIdentity host, IEnumerable<(string Key, IMessage Record)> entries, DateTimeOffset expiration, CancellationToken cancellationToken)
    {
        var subkey = host.PeerId.ToString();
        return dht.StoreManyAsync(entries.Select(e => DhtRecord.Signed(e.Key, subkey, e.Record.ToByteArray(), expiration, host)).ToArray(), cancellationToken);
    }

    /// <summary>
    /// The host entries of <paramref name="value"/> that parse: a PeerId subkey, a valid record and at
    /// least one valid address. Others are skipped: a host can only spoil its own entry.
    /// </summary>
    public static IEnumerable<(PeerId Host, T Record, PeerAddress[] Addresses, DateTimeOffset Expiration)> Parse<T>(DhtValue? value, MessageParser<T> parser, Func<T, IEnumerable<string>> addresses)
        where T : IMessage<T>
    {
        if (value is null || !value.IsDictionary) yield break;
        foreach (var entry in value.Records)
            if (TryParse(entry.Subkey!, entry, parser, addresses) is { } parsed) yield return parsed;
    }

    /// <summary>One entry announced by the host <paramref name="hostText"/> names, or null when it does not parse.</summary>
    public static (PeerId Host, T Record, PeerAddress[] Addresses, DateTimeOffset Expiration)? TryParse<T>(string hostText, DhtRecord entry, MessageParser<T> parser,
        Func<T, IEnumerable<string>> addresses) where T : IMessage<T>
    {
        if (!PeerId.TryParse(hostText, out var host)) return null;
        T record;
        try
        {
            record = parser.ParseFrom(entry.Value.Span);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
        var parsed = addresses(record).Select(a => PeerAddress.TryParse(a, out var address) ? address : (PeerAddress?)null).OfType<PeerAddress>().ToArray();
        return parsed.Length > 0 ? (host, record, parsed, entry.Expiration) : null;
    }
}
