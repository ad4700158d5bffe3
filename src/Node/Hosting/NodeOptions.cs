using System.ComponentModel.DataAnnotations;
using MoEMesh.Dht;
using MoEMesh.Experts.Runtime;
using MoEMesh.Node.Serving;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing;
using MoEMesh.Settings;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Everything a node is configured with, bound from the "MoEMesh" section: appsettings.json or
/// <c>--config FILE</c>, then environment variables (MOEMESH__LISTEN, MOEMESH__EXPERTS__0__PATTERN, …), then
/// command-line flags, each overriding the one before.
/// </summary>
public sealed class NodeOptions : IValidatableObject
{
    /// <summary>The configuration section.</summary>
    public const string Section = "MoEMesh";

    /// <summary>PEM file holding the node's ECDSA P-256 key; created (mode 0600) on first start. Default moemesh.key.</summary>
    [Path]
    public string KeyFile { get; set; } = "moemesh.key";

    /// <summary>host:port for the peer protocol; port 0 takes a free port. Default 0.0.0.0:7700.</summary>
    [PeerAddress(Listen = true)]
    public string Listen { get; set; } = "0.0.0.0:7700";

    /// <summary>Addresses other peers should use; default: the listen address (127.0.0.1 when it is 0.0.0.0).</summary>
    [PeerAddress]
    public List<string> AnnounceAddresses { get; set; } = [];

    /// <summary>host:port for the HTTP status page and metrics (port 0 for any free port). Default 127.0.0.1:7780.</summary>
    [PeerAddress(Listen = true)]
    public string HttpListen { get; set; } = "127.0.0.1:7780";

    /// <summary>Peers to join through, as host:port or PEERID@host:port. Empty: start a new swarm.</summary>
    [PeerEndpoint]
    public List<string> InitialPeers { get; set; } = [];

    /// <summary>Behind NAT: use the DHT without being added to routing tables; hosts no experts for others.</summary>
    public bool ClientMode { get; set; }

    /// <summary>TLS 1.3 between peers. Default true; switch off for loopback testnets.</summary>
    public bool UseTls { get; set; } = true;

    /// <summary>Experts to host.</summary>
    [Section]
    public List<ExpertHostingOptions> Experts { get; set; } = [];

    /// <summary>Where each expert's checkpoint lives (one folder per uid). Default checkpoints.</summary>
    [Path]
    public string CheckpointDirectory { get; set; } = "checkpoints";

    /// <summary>
    /// The models this node holds (kept across restarts): each <c>NAME.safetensors</c> model file is announced as
    /// model:NAME and served to peers; models peers publish here are written to it too. Default models.
    /// </summary>
    [Path]
    public string ModelDirectory { get; set; } = "models";

    /// <summary>Limits of holding, fetching and serving models, and of queries.</summary>
    [Section]
    public Models.ModelServingOptions Models { get; set; } = new();

    /// <summary>Publishing, adopting and reconciling experts' weights.</summary>
    [Section]
    public Weights.WeightsOptions Weights { get; set; } = new();

    /// <summary>How often checkpoints are written (also on stop). Default 5 min.</summary>
    [Duration]
    public TimeSpan CheckpointPeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often experts are announced; each announcement lasts twice this. Default 30 s.</summary>
    [Duration]
    public TimeSpan UpdatePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>On stop, how long calls in flight may take to finish before the node exits anyway. Default 10 s.</summary>
    [Duration]
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadlines, KMin and peer back-off of gating layers run on this node (see src/Routing/README.md).</summary>
    [Section]
    public RoutingOptions Routing { get; set; } = new();

    /// <summary>Batching limits of the expert runtime.</summary>
    [Section]
    public BatchingOptions Batching { get; set; } = new();

    /// <summary>
    /// OpenBLAS threads each expert batch's GEMMs use (process-wide). Empty: the cores divided by
    /// Batching:ConcurrentBatches, so batches running side by side never oversubscribe the cores.
    /// </summary>
    [Count(Max = 1024)]
    public int? BlasThreads { get; set; }

    /// <summary>
    /// The OpenBLAS library to load, tried before this platform's usual names and places (Debian's
    /// libopenblas.so.0, Windows' libopenblas.dll, Homebrew's keg-only path on macOS). Empty: those only.
    /// </summary>
    public string? OpenBlasPath { get; set; }

    /// <summary>Rules for expert requests.</summary>
    [Section]
    public ExpertServingOptions Serving { get; set; } = new();

    /// <summary>DHT knobs.</summary>
    [Section]
    public DhtOptions Dht { get; set; } = new();

    /// <summary>The peer protocol's limits and timings (the "MoEMesh:Protocol" section); TLS is <see cref="UseTls"/>.</summary>
    [Section]
    public PeerProtocolOptions Protocol { get; set; } = new();

    /// <summary>Whether peers can dial this node, and what it does when they cannot (DHT client, relays).</summary>
    [Section]
    public Reachability.ReachabilityOptions Reachability { get; set; } = new();

    /// <summary>Relaying for peers nobody can dial (see src/Protocol/README.md, Relays).</summary>
    [Section]
    public Protocol.Relay.RelayOptions Relay { get; set; } = new();

    /// <summary>The listen address, parsed.</summary>
    public PeerAddress ListenAddress => Parse(nameof(Listen), Listen);

    /// <summary>The HTTP address, parsed.</summary>
    public PeerAddress HttpAddress => Parse(nameof(HttpListen), HttpListen);

    /// <summary>The initial peers, parsed (each is checked by <see cref="Validate"/>).</summary>
    public IReadOnlyList<PeerEndpoint> InitialPeerEndpoints => InitialPeers.Select(PeerEndpoint.Parse).ToArray();

    /// <summary>
    /// Throws a <see cref="NodeConfigurationException"/> naming every setting that cannot work, each by its
    /// rule (MoEMesh.Settings) and the rules between settings.
    /// </summary>
    public void Validate()
    {
        var problems = SettingsValidation.Problems(this, Section);
        if (problems.Count > 0) throw new NodeConfigurationException(string.Join(Environment.NewLine, problems));
    }

    /// <inheritdoc />
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext context)
    {
        if (ClientMode && Experts.Count > 0) yield return new("a client-mode node cannot host experts (no one could reach them)", [nameof(Experts)]);
        if (2 * UpdatePeriod > Dht.MaxTtl)
            yield return new($"must be at most half of Dht:MaxTtl ({Dht.MaxTtl}): announcements last twice it, and peers refuse records that outlive MaxTtl; got {UpdatePeriod}", [nameof(UpdatePeriod)]);
        if (Dht.MaxReplyBytes + MessageOverheadBytes > Protocol.MaxMessageBytes)
            yield return new($"must leave room for a whole find answer (Dht:MaxReplyBytes, {Dht.MaxReplyBytes}, and {MessageOverheadBytes} bytes more); got {Protocol.MaxMessageBytes}", [$"{nameof(Protocol)}:{nameof(Protocol.MaxMessageBytes)}"]);
    }

    /// <summary>Room past a find answer's records for its envelope and contacts.</summary>
    private const int MessageOverheadBytes = 64 * 1024;

    /// <summary>Parses host:port; port 0 (any free port) is allowed for listen addresses.</summary>
    private static PeerAddress Parse(string name, string text) =>
        PeerAddress.TryParseListen(text, out var address) ? address : throw new NodeConfigurationException($"{Section}:{name}: '{text}' is not host:port (for example 0.0.0.0:7700).");
}
