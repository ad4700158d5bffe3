using Google.Protobuf;
using MoEMesh.Dht;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Models;

namespace MoEMesh.Routing.Directory;

/// <summary>A holder of a model file as its signed DHT record describes it.</summary>
/// <param name="Name">The model.</param>
/// <param name="Host">The holder (the record's signer).</param>
/// <param name="Addresses">Where the holder serves blob.fetch.</param>
/// <param name="Publication">What the holder holds: version, SHA-256, size, and the publisher's signature.</param>
/// <param name="Expiration">When the announcement lapses unless renewed.</param>
public sealed record ModelHostInfo(string Name, PeerId Host, IReadOnlyList<PeerAddress> Addresses, ModelPublication Publication, DateTimeOffset Expiration)
{
    /// <summary>Hex SHA-256 of the file.</summary>
    public string Sha256 => Publication.Sha256;

    /// <summary>Bytes of the file.</summary>
    public long Size => (long)Publication.Size;

    /// <summary>The version (Unix ms when it was saved).</summary>
    public long Version => Publication.Version;

    /// <summary>Where to fetch the file (the host's first address; the handshake checks its PeerId).</summary>
    public PeerEndpoint Endpoint => new(Addresses[0], Host);
}

/// <summary>A model the swarm knows: its newest version and who holds which.</summary>
/// <param name="Name">The model.</param>
/// <param name="Newest">The newest version of the publisher most holders attest (<see cref="ModelPublications.Trusted"/>).</param>
/// <param name="Holders">Every live holder, newest version first.</param>
public sealed record ModelSummary(string Name, ModelPublication Newest, IReadOnlyList<ModelHostInfo> Holders);

/// <summary>
/// Model files in the DHT. <c>model:&lt;name&gt;</c> holds one entry per holder, under the subkey of the
/// holder's PeerId, whose value is a <see cref="ModelRecord"/> signed by that holder (the file's SHA-256,
/// size, version and its publisher's signature). The same record also goes under the key <c>models</c>
/// with the subkey <c>&lt;name&gt;:&lt;PeerId&gt;</c> (a subkey ending in a PeerId must be signed by it), so
/// one lookup lists every model the swarm holds. Peers fetch the bytes with <see cref="Invocation.BlobClient"/>.
/// </summary>
public sealed class ModelDirectory(IDht dht)
{
    /// <summary>The key listing every model.</summary>
    public const string IndexKey = "models";

    /// <summary>How model keys start.</summary>
    public const string ModelKeyPrefix = "model:";

    /// <summary>The DHT key of a model.</summary>
    public static string KeyOf(string name) => ModelKeyPrefix + name;

    /// <summary>Announces models held by <paramref name="host"/> until <paramref name="expiration"/>; one result per record stored.</summary>
    public Task<IReadOnlyList<DhtStoreResult>> DeclareAsync(PeerIdentity host, IReadOnlyList<(string Name, ModelRecord Record)> models, DateTimeOffset expiration, CancellationToken cancellationToken)
    {
        var subkey = host.PeerId.ToString();
        var records = models.SelectMany(m => new[]
        {
            Dht.Records.DhtRecord.Signed(KeyOf(m.Name), subkey, m.Record.ToByteArray(), expiration, host),
            Dht.Records.DhtRecord.Signed(IndexKey, m.Name + ":" + subkey, m.Record.ToByteArray(), expiration, host),
        }).ToArray();
        return dht.StoreManyAsync(records, cancellationToken);
    }

    /// <summary>The live holders of a model, newest version first.</summary>
    public async Task<IReadOnlyList<ModelHostInfo>> FindAsync(string name, CancellationToken cancellationToken) =>
        Holders(name, HostEntries.Parse(await dht.GetAsync(KeyOf(name), latest: true, cancellationToken), ModelRecord.Parser, r => r.Addresses));

    /// <summary>Every model the swarm holds, by name, with its newest version and holders.</summary>
    public async Task<IReadOnlyList<ModelSummary>> ListAsync(CancellationToken cancellationToken)
    {
        var value = await dht.GetAsync(IndexKey, latest: true, cancellationToken);
        var entries = new List<(string Name, PeerId Host, ModelRecord Record, PeerAddress[] Addresses, DateTimeOffset Expiration)>();
        if (value is { IsDictionary: true })
        {
            foreach (var record in value.Records)
            {
                // "<name>:<PeerId>": the DHT checked that the PeerId signed it; the name must be one.
                int colon = record.Subkey!.LastIndexOf(':');
                if (colon <= 0 || !ModelFile.IsValidName(record.Subkey[..colon], out _)) continue;
                if (HostEntries.TryParse(record.Subkey[(colon + 1)..], record, ModelRecord.Parser, r => r.Addresses) is { } e)
                    entries.Add((record.Subkey[..colon], e.Host, e.Record, e.Addresses, e.Expiration));
            }
        }
        return entries.GroupBy(e => e.Name, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => Holders(g.Key, g.Select(e => (e.Host, e.Record, e.Addresses, e.Expiration))))
            .Where(h => h.Length > 0)
            .Select(h => new ModelSummary(h[0].Name, (ModelPublications.Trusted(h).FirstOrDefault() ?? h[0]).Publication, h))
            .ToArray();
    }

    /// <summary>
    /// The holders whose record names a publication of this model (its name, a size a file can have), newest
    /// version first; a record that does not is skipped, as a host can only spoil its own entry.
    /// </summary>
    private static ModelHostInfo[] Holders(string name, IEnumerable<(PeerId Host, ModelRecord Record, PeerAddress[] Addresses, DateTimeOffset Expiration)> entries) =>
        entries.Where(e => e.Record.Publication is { } p && p.Name == name && p.Size <= long.MaxValue)
            .Select(e => new ModelHostInfo(name, e.Host, e.Addresses, e.Record.Publication, e.Expiration))
            .OrderByDescending(h => h.Version).ThenBy(h => h.Host.ToString(), StringComparer.Ordinal).ToArray();
}
