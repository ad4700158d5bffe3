using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Routing.Directory;

/// <summary>
/// Experts in the DHT. Owns the key schema: <c>expert:&lt;uid&gt;</c> holds one entry per host, under the
/// subkey of the host's PeerId, whose value is an <see cref="ExpertRecord"/> signed by that host (so only
/// the host can announce or renew itself). Several hosts under one uid are replicas.
/// </summary>
public sealed class ExpertDirectory(IDht dht)
{
    /// <summary>The DHT key of an expert.</summary>
    public static string KeyOf(ExpertUid uid) => "expert:" + uid.Value;

    /// <summary>Announces experts hosted by <paramref name="host"/> until <paramref name="expiration"/>; one result per expert.</summary>
    public Task<IReadOnlyList<DhtStoreResult>> DeclareAsync(PeerIdentity host, IReadOnlyList<(ExpertUid Uid, ExpertRecord Record)> experts, DateTimeOffset expiration, CancellationToken cancellationToken)
    {
        var subkey = host.PeerId.ToString();
        var records = experts.Select(e => DhtRecord.Signed(KeyOf(e.Uid), subkey, e.Record.ToByteArray(), expiration, host)).ToArray();
        return dht.StoreManyAsync(records, cancellationToken);
    }

    /// <summary>
    /// The live hosts of each uid (every uid asked is in the answer, with no hosts when none is
    /// announced). Entries that do not parse are skipped: a host can only spoil its own entry.
    /// </summary>
    public async Task<IReadOnlyDictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>>> FindAsync(IReadOnlyCollection<ExpertUid> uids, CancellationToken cancellationToken)
    {
        var keys = uids.Distinct().ToDictionary(KeyOf, u => u);
        var values = await dht.GetManyAsync(keys.Keys, latest: true, cancellationToken);
        return keys.ToDictionary(k => k.Value, k => Hosts(k.Value, values.GetValueOrDefault(k.Key)));
    }

    private static IReadOnlyList<ExpertHostInfo> Hosts(ExpertUid uid, DhtValue? value)
    {
        if (value is null || !value.IsDictionary) return [];
        var hosts = new List<ExpertHostInfo>();
        foreach (var entry in value.Records)
        {
            if (!PeerId.TryParse(entry.Subkey, out var host)) continue;
            ExpertRecord record;
            try
            {
                record = ExpertRecord.Parser.ParseFrom(entry.Value.Span);
            }
            catch (InvalidProtocolBufferException)
            {
                continue;
            }
            var addresses = record.Addresses.Select(a => PeerAddress.TryParse(a, out var address) ? address : (PeerAddress?)null).OfType<PeerAddress>().ToArray();
            if (addresses.Length == 0) continue;
            hosts.Add(new ExpertHostInfo(uid, host, addresses, record.Type, record.SchemaHash, record.Load ?? new ExpertLoad(), record.Version, entry.Expiration));
        }
        return hosts;
    }
}
