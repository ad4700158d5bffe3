using MoEMesh.Dht.Records;

namespace MoEMesh.Dht;

/// <summary>
/// The one way the rest of MoEMesh uses the DHT. Keys are strings; values are bytes with an absolute
/// expiration, optionally under a subkey, signed where the key or subkey names an owner
/// (<see cref="RecordOwnership"/>). Every call ends within <see cref="DhtOptions.OperationTimeout"/>.
/// </summary>
public interface IDht
{
    /// <summary>
    /// The value under <paramref name="key"/>, or null when no reachable node holds one. With
    /// <paramref name="latest"/> false the search stops at the first node holding a value; with true it
    /// asks every node of the final beam and merges the latest entry per subkey.
    /// </summary>
    Task<DhtValue?> GetAsync(string key, bool latest, CancellationToken cancellationToken);

    /// <summary>Values of many keys in one search; a key with no value maps to null.</summary>
    Task<IReadOnlyDictionary<string, DhtValue?>> GetManyAsync(IReadOnlyCollection<string> keys, bool latest, CancellationToken cancellationToken);

    /// <summary>Stores one record on the <see cref="DhtOptions.NumReplicas"/> nearest nodes that accept it.</summary>
    Task<DhtStoreResult> StoreAsync(DhtRecord record, CancellationToken cancellationToken);

    /// <summary>Stores many records, batching those bound for the same node into one RPC.</summary>
    Task<IReadOnlyList<DhtStoreResult>> StoreManyAsync(IReadOnlyList<DhtRecord> records, CancellationToken cancellationToken);
}

/// <summary>Where one record ended up: on how many replicas, and why not more when fewer than asked.</summary>
public sealed record DhtStoreResult(DhtRecord Record, int Replicas, string? Problem)
{
    /// <summary>At least one node holds the record.</summary>
    public bool Succeeded => Replicas > 0;

    /// <inheritdoc />
    public override string ToString() => Problem is null ? $"{Record}: {Replicas} replicas" : $"{Record}: {Replicas} replicas ({Problem})";
}
