using Google.Protobuf;
using MoEMesh.Dht;
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
    public Task<IReadOnlyList<DhtStoreResult>> DeclareAsync(PeerIdentity host, IReadOnlyList<(ExpertUid Uid, ExpertRecord Record)> experts, DateTimeOffset expiration, CancellationToken cancellationToken) =>
        HostEntries.DeclareAsync(dht, host, experts.Select(e => (KeyOf(e.Uid), (IMessage)e.Record)), expiration, cancellationToken);

    /// <summary>
    /// The live hosts of each uid (every uid asked is in the answer, with no hosts when none is
    /// announced). Entries that do not parse are skipped: a host can only spoil its own entry.
    /// </summary>
    public async Task<IReadOnlyDictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>>> FindAsync(IReadOnlyCollection<ExpertUid> uids, CancellationToken cancellationToken)
    {
        var keys = uids.Distinct().ToDictionary(KeyOf, u => u);
        var values = await dht.GetManyAsync(keys.Keys, latest: true, cancellationToken);
        return keys.ToDictionary(k => k.Value, k => (IReadOnlyList<ExpertHostInfo>)HostEntries.Parse(values.GetValueOrDefault(k.Key), ExpertRecord.Parser, r => r.Addresses)
            .Select(e => new ExpertHostInfo(k.Value, e.Host, e.Addresses, e.Record.Type, e.Record.SchemaHash, e.Record.Load ?? new ExpertLoad(), e.Record.Version, e.Expiration))
            .ToArray());
    }
}
