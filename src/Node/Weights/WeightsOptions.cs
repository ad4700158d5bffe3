using MoEMesh.Protocol.Identity;
using MoEMesh.Settings;

namespace MoEMesh.Node.Weights;

/// <summary>
/// How a node publishes its experts' weights, adopts published ones and keeps replicas in step (the
/// "MoEMesh:Weights" section).
/// </summary>
public sealed class WeightsOptions
{
    /// <summary>Whether trained experts' weights are published (snapshots held, announced, copied to peers). Default true.</summary>
    public bool Publish { get; set; } = true;

    /// <summary>How often each expert that trained since its last snapshot is published (also on a graceful stop). Default 5 min.</summary>
    [Duration]
    public TimeSpan PublishPeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Peers each new snapshot is offered to, to hold a copy (the peers nearest its key in the DHT). Default 2.</summary>
    [Count(Min = 0, Max = 16)]
    public int Copies { get; set; } = 2;

    /// <summary>Snapshots kept per expert, newest first (own and held for others). Default 3.</summary>
    [Count(Max = 64)]
    public int KeepPerExpert { get; set; } = 3;

    /// <summary>Bytes of snapshots kept on disk; the oldest go first, never an expert's newest. Default 2 GiB.</summary>
    [Bytes(Min = 1 << 20)]
    public long MaxBytes { get; set; } = 2L << 30;

    /// <summary>Largest snapshot fetched, held or adopted. Default 512 MiB.</summary>
    [Bytes(Min = 1024)]
    public long MaxSnapshotBytes { get; set; } = 512L << 20;

    /// <summary>
    /// At start, take the newest verified published weights of every expert that has no checkpoint here,
    /// instead of starting from its seed. Default true.
    /// </summary>
    public bool Adopt { get; set; } = true;

    /// <summary>
    /// A pattern takes uids that have published weights and no live host first, newest weights first
    /// (<c>--adopt-orphans</c>): a volunteer's node carries on the experts whose hosts have left. Default false.
    /// </summary>
    public bool AdoptOrphans { get; set; }

    /// <summary>PeerIds whose snapshots this node adopts or averages with; empty: any host's signed snapshot. Default empty.</summary>
    [PeerId]
    public List<string> AdoptFrom { get; set; } = [];

    /// <summary>
    /// How often the hosts of a uid reconcile: trainable replicas average their weights (weighted by the
    /// updates each trained), frozen ones take the newest snapshot. Default 5 min.
    /// </summary>
    [Duration]
    public TimeSpan ReconcilePeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Bytes of other replicas' snapshots fetched per reconcile round, over all experts; the rest wait for the next. Default 256 MiB.</summary>
    [Bytes(Min = 1024)]
    public long ReconcileMaxBytes { get; set; } = 256L << 20;
}
