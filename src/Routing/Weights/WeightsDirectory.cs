using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;

namespace MoEMesh.Routing.Weights;

/// <summary>A holder of a published snapshot of an expert's weights, as its signed DHT record describes it.</summary>
/// <param name="Uid">The expert.</param>
/// <param name="Holder">The peer that holds the file (the record's signer; not necessarily the snapshot's host).</param>
/// <param name="Addresses">Where the holder serves blob.fetch.</param>
/// <param name="Snapshot">The snapshot as its host signed it.</param>
public sealed record WeightsHolderInfo(ExpertUid Uid, PeerId Holder, IReadOnlyList<PeerAddress> Addresses, WeightsSnapshot Snapshot)
{
    /// <summary>Where to fetch the file (the holder's first address; the handshake checks its PeerId).</summary>
    public PeerEndpoint Endpoint => new(Addresses[0], Holder);
}

/// <summary>
/// Published weights in the DHT: <c>weights:&lt;uid&gt;</c> holds one entry per holder of a snapshot of that
/// expert, under the subkey of the holder's PeerId, whose value is a <see cref="WeightsRecord"/> signed by the
/// holder (its addresses and the snapshot as the expert's host signed it). A host holds and announces its
/// own snapshots and hands copies to a few peers, which announce them too: the weights stay findable after
/// the host has gone.
/// </summary>
public sealed class WeightsDirectory(IDht dht)
{
    /// <summary>How weights keys start.</summary>
    public const string KeyPrefix = "weights:";

    /// <summary>The DHT key of an expert's published weights.</summary>
    public static string KeyOf(ExpertUid uid) => KeyPrefix + uid.Value;

    /// <summary>Announces the snapshots <paramref name="holder"/> holds (one per uid) until <paramref name="expiration"/>.</summary>
    public Task<IReadOnlyList<DhtStoreResult>> DeclareAsync(PeerIdentity holder, IReadOnlyList<(ExpertUid Uid, WeightsRecord Record)> held, DateTimeOffset expiration, CancellationToken cancellationToken) =>
        HostEntries.DeclareAsync(dht, holder, held.Select(h => (KeyOf(h.Uid), (IMessage)h.Record)), expiration, cancellationToken);

    /// <summary>
    /// The holders of each uid's published weights, newest snapshot first (most updates, then latest made).
    /// Entries whose snapshot is not of that uid are skipped; signatures are checked by whoever takes one.
    /// </summary>
    public async Task<IReadOnlyDictionary<ExpertUid, IReadOnlyList<WeightsHolderInfo>>> FindAsync(IReadOnlyCollection<ExpertUid> uids, CancellationToken cancellationToken)
    {
        var values = await dht.GetManyAsync(uids.Select(KeyOf).Distinct().ToArray(), latest: true, cancellationToken);
        return uids.Distinct().ToDictionary(u => u, u => (IReadOnlyList<WeightsHolderInfo>)HostEntries.Parse(values.GetValueOrDefault(KeyOf(u)), WeightsRecord.Parser, r => r.Addresses)
            .Where(e => e.Record.Snapshot is { } s && s.Uid == u.Value)
            .Select(e => new WeightsHolderInfo(u, e.Host, e.Addresses, e.Record.Snapshot))
            .OrderByDescending(h => h.Snapshot.Updates).ThenByDescending(h => h.Snapshot.CreatedUnixMs).ThenBy(h => h.Holder.ToString(), StringComparer.Ordinal)
            .ToArray());
    }
}
