using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Routing.Directory;

/// <summary>A host of a model file as its signed DHT record describes it.</summary>
public sealed record ModelHostInfo(string Name, PeerId Host, IReadOnlyList<PeerAddress> Addresses, string Sha256, long Size, long Version, DateTimeOffset Expiration)
{
    /// <summary>Where to fetch the file (the host's first address; the handshake checks its PeerId).</summary>
    public PeerEndpoint Endpoint => new(Addresses[0], Host);
}

/// <summary>
/// Model files (trunks) in the DHT: <c>model:&lt;name&gt;</c> holds one entry per host, under the subkey of
/// the host's PeerId, whose value is a <see cref="ModelRecord"/> signed by that host: the file's SHA-256,
/// size and version. Peers fetch the bytes from a host with <see cref="Invocation.BlobClient"/>.
/// </summary>
public sealed class ModelDirectory(IDht dht)
{
    /// <summary>The DHT key of a model.</summary>
    public static string KeyOf(string name) => "model:" + name;

    /// <summary>Announces models hosted by <paramref name="host"/> until <paramref name="expiration"/>.</summary>
    public Task<IReadOnlyList<DhtStoreResult>> DeclareAsync(PeerIdentity host, IReadOnlyList<(string Name, ModelRecord Record)> models, DateTimeOffset expiration, CancellationToken cancellationToken) =>
        HostEntries.DeclareAsync(dht, host, models.Select(m => (KeyOf(m.Name), (IMessage)m.Record)), expiration, cancellationToken);

    /// <summary>The live hosts of a model, newest version first.</summary>
    public async Task<IReadOnlyList<ModelHostInfo>> FindAsync(string name, CancellationToken cancellationToken)
    {
        var value = await dht.GetAsync(KeyOf(name), latest: true, cancellationToken);
        return HostEntries.Parse(value, ModelRecord.Parser, r => r.Addresses)
            .Select(e => new ModelHostInfo(name, e.Host, e.Addresses, e.Record.Sha256, (long)e.Record.Size, e.Record.Version, e.Expiration))
            .OrderByDescending(h => h.Version).ToArray();
    }
}
