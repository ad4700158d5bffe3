using System.Text.Json;
using System.Text.Json.Serialization;
using MoEMesh.Node.Hosting;

namespace MoEMesh.Node.Http;

/// <summary>
/// What GET /v1/status and the peer method <c>node.status</c> answer, as JSON. The HTTP port answers while
/// the node still joins the swarm and builds its experts; <see cref="Ready"/> turns true once it has joined
/// and announced them.
/// </summary>
public sealed record NodeStatus(
    bool Ready,
    string PeerId,
    string Version,
    string ListenAddress,
    IReadOnlyList<string> AnnounceAddresses,
    bool ClientMode,
    int RoutingTableSize,
    int DhtRecords,
    double UptimeSeconds,
    double? AnnouncedAfterMs,
    IReadOnlyList<ExpertStatus> Experts,
    AuditStatus Audits,
    ReachabilityStatus Reachability)
{
    /// <summary>The peer method that answers with this document.</summary>
    public const string Method = "node.status";

    // Read by people and scripts, never embedded in HTML: schemas keep their "->" rather than "\u003E".
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The status of a running node.</summary>
    public static NodeStatus Of(MeshNode node) => new(
        node.Ready,
        node.PeerId.ToString(),
        typeof(NodeStatus).Assembly.GetName().Version?.ToString() ?? "0",
        node.ListenAddress.ToString(),
        node.AnnounceAddresses,
        node.Options.ClientMode,
        node.Dht.RoutingTableSize,
        node.Dht.StoredRecords,
        Math.Round((node.Dht.Time.GetUtcNow() - node.StartedAt).TotalSeconds, 1),
        node.AnnouncedAfter is { } after ? Math.Round(after.TotalMilliseconds, 1) : null,
        node.Experts.Values.OrderBy(e => e.Uid.Value, StringComparer.Ordinal).Select(e =>
        {
            var load = e.Load.Snapshot();
            var lineage = e.Backend.Lineage;
            long updates = e.Backend.UpdateCount;
            return new ExpertStatus(e.Uid.Value, e.Backend.Spec.Type, e.Backend.Schema.ToString(), updates, load.QueueDepth,
                Math.Round(load.LatencyP50Ms, 3), Math.Round(load.LatencyP95Ms, 3),
                new WeightsStatus(updates, lineage.Source, lineage.From, lineage.AtUpdate, updates - lineage.AtUpdate, e.CurrentSnapshot, lineage.Describe(updates)));
        }).ToArray(),
        new AuditStatus(node.Health?.Audits ?? 0, node.Health?.Disputes ?? 0,
            (node.Health?.Flagged ?? []).Select(f => new FlaggedHostStatus(f.Host.ToString(), f.Reason, f.At)).ToArray()),
        ReachabilityStatus.Of(node));

    /// <summary>The JSON document.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, Json);

    /// <summary>Reads the JSON document.</summary>
    /// <exception cref="JsonException">The bytes are not a status document.</exception>
    public static NodeStatus FromJson(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<NodeStatus>(json, Json) ?? throw new JsonException("the status document is empty");
}

/// <summary>
/// Audits this node ran as a gating node: answers compared between replicas announcing the same weights,
/// pairs that disagreed with no majority, and the hosts flagged (no longer called) for answering unlike the others.
/// </summary>
public sealed record AuditStatus(long Compared, long Disputed, IReadOnlyList<FlaggedHostStatus> Flagged);

/// <summary>
/// Whether peers can dial this node (<c>reachable</c>, <c>unreachable</c>, <c>unknown</c>) and where they reached it, what each peer asked said,
/// the relays it is reached through, and what it relays for others.
/// </summary>
public sealed record ReachabilityStatus(string State, string Address, string? ReachedAt, DateTimeOffset? CheckedAt, IReadOnlyList<Reachability.DialbackResult> Peers,
    IReadOnlyList<string> Relays, RelayingStatus? Relaying)
{
    /// <summary>The node's.</summary>
    public static ReachabilityStatus Of(MeshNode node)
    {
        var report = node.Reachability;
        return new ReachabilityStatus(report.State.ToString().ToLowerInvariant(), report.Address, report.ReachedAt, report.CheckedAt, report.Results,
            node.Relays.Select(r => r.ToString()).ToArray(),
            node.Relaying is { } relay ? new RelayingStatus(relay.Reservations, relay.Circuits, relay.CircuitsSpliced, relay.BytesRelayed, relay.Refused) : null);
    }
}

/// <summary>What this node relays for others: reservations and circuits now, circuits and bytes since start, refusals.</summary>
public sealed record RelayingStatus(int Reservations, int Circuits, long CircuitsSpliced, long BytesRelayed, long Refused);

/// <summary>A host an audit flagged.</summary>
public sealed record FlaggedHostStatus(string PeerId, string Reason, DateTimeOffset At);

/// <summary>One hosted expert on the status page.</summary>
public sealed record ExpertStatus(string Uid, string Type, string Schema, long Updates, int QueueDepth, double LatencyP50Ms, double LatencyP95Ms, WeightsStatus Weights);

/// <summary>
/// An expert's weights: their version (the updates they embody), where they came from (<c>seed</c>,
/// <c>adopted</c> from a PeerId's snapshot, <c>averaged</c> with its replicas, led by a PeerId) at which update,
/// how many updates were trained here since, and the published snapshot they equal (null when they trained since).
/// </summary>
public sealed record WeightsStatus(long Version, string Source, string? From, long AtUpdate, long TrainedHere, string? Snapshot, string Description);
