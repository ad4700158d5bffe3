using System.ComponentModel.DataAnnotations;
using MoEMesh.Settings;

namespace MoEMesh.Dht;

/// <summary>
/// Kademlia knobs. Defaults come from the Kademlia paper and Hivemind (k = 20, alpha = 3, 5 replicas,
/// 3 s RPC timeout); every time limit is finite.
/// </summary>
public sealed class DhtOptions : IValidatableObject
{
    /// <summary>Contacts per k-bucket, and how many nearest nodes a lookup converges on. Default 20.</summary>
    [Count]
    public int BucketSize { get; set; } = 20;

    /// <summary>Requests in flight per key during a lookup. Default 3.</summary>
    [Count]
    public int Alpha { get; set; } = 3;

    /// <summary>Nodes a value is stored on (the nearest that accept it). Default 5.</summary>
    [Count]
    public int NumReplicas { get; set; } = 5;

    /// <summary>Limit on one RPC. Default 3 s.</summary>
    [Duration]
    public TimeSpan RpcTimeout { get; set; } = TimeSpan.FromSeconds(3);

    /// <summary>
    /// A lookup request unanswered this long stops holding one of the key's alpha slots, so the lookup goes
    /// on past a dead node instead of waiting out its RpcTimeout (its answer still counts if it comes).
    /// Default 500 ms: several round trips on the internet, a sixth of RpcTimeout.
    /// </summary>
    [Duration]
    public TimeSpan SlowRpcThreshold { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Limit on a whole get or store, however many rounds it takes. Default 15 s.</summary>
    [Duration]
    public TimeSpan OperationTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Keys per find or store RPC; more are split over several calls. Default 256.</summary>
    [Count]
    public int MaxKeysPerRpc { get; set; } = 256;

    /// <summary>Furthest expiration accepted, measured from now. Default 1 h (announcements use 60 s).</summary>
    [Duration]
    public TimeSpan MaxTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Largest value accepted. Default 64 KiB.</summary>
    [Bytes]
    public int MaxValueBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// Bytes of records one node holds for the network (each entry charged its key, subkey, value, key and
    /// signature plus 128). When full, each network is owed an equal share. Default 128 MiB.
    /// </summary>
    [Bytes(Min = 4096)]
    public long MaxStoredBytes { get; set; } = 128L << 20;

    /// <summary>Bytes of records one storing peer may have on this node. Default 32 MiB.</summary>
    [Bytes(Min = 4096)]
    public long MaxBytesPerOrigin { get; set; } = 32L << 20;

    /// <summary>
    /// Bytes of records one key may hold (all its subkey entries); when full, each network is owed an equal
    /// share of it. Default 1 MiB (thousands of hosts of one expert).
    /// </summary>
    [Bytes(Min = 4096)]
    public long MaxBytesPerKey { get; set; } = 1L << 20;

    /// <summary>
    /// Bytes of records in one find answer; the records of queries beyond it are left out (and asked for
    /// again). At least MaxBytesPerKey, so one key's records always fit. Default 4 MiB.
    /// </summary>
    [Bytes(Min = 4096)]
    public long MaxReplyBytes { get; set; } = 4L << 20;

    /// <summary>First ban after a failed RPC; doubles per consecutive failure. Default 5 s.</summary>
    [Duration]
    public TimeSpan BanBase { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Longest ban. Default 5 min.</summary>
    [Duration]
    public TimeSpan BanMax { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Rounds of pings to the initial peers before bootstrap gives up. Default 4.</summary>
    [Count]
    public int BootstrapAttempts { get; set; } = 4;

    /// <summary>Wait after the first failed bootstrap round; doubles per round. Default 1 s.</summary>
    [Duration]
    public TimeSpan BootstrapBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>A bucket with no lookup for this long is refreshed by a lookup of a random id in it. Default 10 min.</summary>
    [Duration]
    public TimeSpan RefreshPeriod { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How often a node stores the records it holds on the nodes now nearest their keys (Kademlia's
    /// republish), so records outlive the nodes that held them. Keys some holder republished within the
    /// period, and records that expire within it, are left out. Zero switches it off. Default 10 min.
    /// </summary>
    [Duration(ZeroAllowed = true)]
    public TimeSpan RepublishPeriod { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How long a contact that failed is tried again (Alpha of them each maintenance pass, the last
    /// BucketSize lost), so the two sides of a partition that lasted this long still find each other.
    /// Default 1 h.
    /// </summary>
    [Duration]
    public TimeSpan LostContactRetention { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often maintenance runs: purge expired records, refresh stale buckets, republish, rejoin when the table is empty. Default 15 s.</summary>
    [Duration]
    public TimeSpan MaintenanceInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// A node behind NAT: it gets and stores, but tells others not to add it to their routing tables, and
    /// holds no records for others.
    /// </summary>
    public bool ClientMode { get; set; }

    /// <inheritdoc />
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext context)
    {
        if (MaxReplyBytes < MaxBytesPerKey)
            yield return new($"must be at least MaxBytesPerKey ({MaxBytesPerKey}), so one key's records fit in one answer; got {MaxReplyBytes}", [nameof(MaxReplyBytes)]);
        if (OperationTimeout <= RpcTimeout)
            yield return new($"must exceed RpcTimeout ({RpcTimeout}): a store needs a lookup and then a round of stores; got {OperationTimeout}", [nameof(OperationTimeout)]);
        if (NumReplicas > BucketSize)
            yield return new($"must not exceed BucketSize ({BucketSize}); got {NumReplicas}", [nameof(NumReplicas)]);
    }
}
