using MoEMesh.Dht;
using MoEMesh.Experts.Runtime;
using MoEMesh.Node.Serving;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Everything a node is configured with, bound from the "MoEMesh" section: appsettings.json or
/// <c>--config FILE</c>, then environment variables (MOEMESH__LISTEN, MOEMESH__EXPERTS__0__PATTERN, …), then
/// command-line flags, each overriding the one before.
/// </summary>
public sealed class NodeOptions
{
    /// <summary>The configuration section.</summary>
    public const string Section = "MoEMesh";

    /// <summary>PEM file holding the node's ECDSA P-256 key; created (mode 0600) on first start. Default moemesh.key.</summary>
    public string KeyFile { get; set; } = "moemesh.key";

    /// <summary>host:port for the peer protocol; port 0 takes a free port. Default 0.0.0.0:7700.</summary>
    public string Listen { get; set; } = "0.0.0.0:7700";

    /// <summary>Addresses other peers should use; default: the listen address (127.0.0.1 when it is 0.0.0.0).</summary>
    public List<string> AnnounceAddresses { get; set; } = [];

    /// <summary>host:port for the HTTP status page and metrics (port 0 for any free port). Default 127.0.0.1:7780.</summary>
    public string HttpListen { get; set; } = "127.0.0.1:7780";

    /// <summary>Peers to join through, as host:port or PEERID@host:port. Empty: start a new swarm.</summary>
    public List<string> InitialPeers { get; set; } = [];

    /// <summary>Behind NAT: use the DHT without being added to routing tables; hosts no experts for others.</summary>
    public bool ClientMode { get; set; }

    /// <summary>TLS 1.3 between peers. Default true; switch off for loopback testnets.</summary>
    public bool UseTls { get; set; } = true;

    /// <summary>Experts to host.</summary>
    public List<ExpertHostingOptions> Experts { get; set; } = [];

    /// <summary>Where each expert's checkpoint lives (one folder per uid). Default checkpoints.</summary>
    public string CheckpointDirectory { get; set; } = "checkpoints";

    /// <summary>
    /// The models this node holds (kept across restarts): each <c>NAME.safetensors</c> model file is announced as
    /// model:NAME and served to peers; models peers publish here are written to it too. Default models.
    /// </summary>
    public string ModelDirectory { get; set; } = "models";

    /// <summary>Limits of holding, fetching and serving models, and of queries.</summary>
    public Models.ModelServingOptions Models { get; set; } = new();

    /// <summary>How often checkpoints are written (also on stop). Default 5 min.</summary>
    public TimeSpan CheckpointPeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often experts are announced; each announcement lasts twice this. Default 30 s.</summary>
    public TimeSpan UpdatePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>On stop, how long calls in flight may take to finish before the node exits anyway. Default 10 s.</summary>
    public TimeSpan DrainTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Deadlines, KMin and peer back-off of gating layers run on this node (see src/Routing/README.md).</summary>
    public RoutingOptions Routing { get; set; } = new();

    /// <summary>Batching limits of the expert runtime.</summary>
    public BatchingOptions Batching { get; set; } = new();

    /// <summary>Rules for expert requests.</summary>
    public ExpertServingOptions Serving { get; set; } = new();

    /// <summary>DHT knobs.</summary>
    public DhtOptions Dht { get; set; } = new();

    /// <summary>The peer protocol's limits and timings (the "MoEMesh:Protocol" section); TLS is <see cref="UseTls"/>.</summary>
    public PeerProtocolOptions Protocol { get; set; } = new();

    /// <summary>The listen address, parsed.</summary>
    public PeerAddress ListenAddress => Parse(nameof(Listen), Listen);

    /// <summary>The HTTP address, parsed.</summary>
    public PeerAddress HttpAddress => Parse(nameof(HttpListen), HttpListen);

    /// <summary>The initial peers, parsed.</summary>
    public IReadOnlyList<PeerEndpoint> InitialPeerEndpoints => InitialPeers.Select((p, i) =>
    {
        try
        {
            return PeerEndpoint.Parse(p);
        }
        catch (FormatException e)
        {
            throw new NodeConfigurationException($"{Section}:{nameof(InitialPeers)}:{i}: {e.Message}", e);
        }
    }).ToArray();

    /// <summary>Throws a <see cref="NodeConfigurationException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        _ = ListenAddress;
        _ = InitialPeerEndpoints;
        for (int i = 0; i < AnnounceAddresses.Count; i++)
            if (Parse($"{nameof(AnnounceAddresses)}:{i}", AnnounceAddresses[i]).Port == 0) Fail($"{nameof(AnnounceAddresses)}:{i}", "needs a real port, not 0");
        _ = HttpAddress;
        if (string.IsNullOrWhiteSpace(KeyFile)) Fail(nameof(KeyFile), "must name a file");
        if (string.IsNullOrWhiteSpace(CheckpointDirectory)) Fail(nameof(CheckpointDirectory), "must name a folder");
        Period(nameof(CheckpointPeriod), CheckpointPeriod);
        Period(nameof(UpdatePeriod), UpdatePeriod);
        Period(nameof(DrainTimeout), DrainTimeout);
        if (ClientMode && Experts.Count > 0) Fail(nameof(Experts), "a client-mode node cannot host experts (no one could reach them)");
        for (int i = 0; i < Experts.Count; i++) ValidateExpert(i, Experts[i]);
        Wrap(nameof(Batching), Batching.Validate);
        Wrap(nameof(Dht), Dht.Validate);
        Wrap(nameof(Routing), Routing.Validate);
        Wrap(nameof(Models), Models.Validate);
        Wrap(nameof(Serving), Serving.Validate);
        Wrap(nameof(Protocol), Protocol.Validate);
        if (string.IsNullOrWhiteSpace(ModelDirectory)) Fail(nameof(ModelDirectory), "must name a folder");
    }

    private static void ValidateExpert(int index, ExpertHostingOptions e)
    {
        string at = $"{nameof(Experts)}:{index}";
        if ((e.Uid is null) == (e.Pattern is null)) Fail(at, "set exactly one of Uid and Pattern");
        if (e.Uid is not null && !ExpertUid.TryParse(e.Uid, out _, out var error)) Fail($"{at}:{nameof(e.Uid)}", error);
        if (e.Pattern is not null)
        {
            UidPattern pattern;
            try
            {
                pattern = UidPattern.Parse(e.Pattern);
            }
            catch (FormatException x)
            {
                throw new NodeConfigurationException($"{Section}:{at}:{nameof(e.Pattern)}: {x.Message}", x);
            }
            if (e.Count < 1 || e.Count > pattern.Count) Fail($"{at}:{nameof(e.Count)}", $"must be between 1 and the {pattern.Count} uids of {pattern.Text}; got {e.Count}");
        }
        if (e.HiddenDim < 1) Fail($"{at}:{nameof(e.HiddenDim)}", $"must be at least 1; got {e.HiddenDim}");
        if (e.InnerDim is < 1) Fail($"{at}:{nameof(e.InnerDim)}", $"must be at least 1; got {e.InnerDim}");
        if (e.Optimizer is not ("sgd" or "adam" or "adamw")) Fail($"{at}:{nameof(e.Optimizer)}", $"must be sgd, adam or adamw; got '{e.Optimizer}'");
        if (!(e.LearningRate > 0) || !float.IsFinite(e.LearningRate)) Fail($"{at}:{nameof(e.LearningRate)}", $"must be positive; got {e.LearningRate}");
        if (!(e.MaxGradNorm > 0) || !float.IsFinite(e.MaxGradNorm)) Fail($"{at}:{nameof(e.MaxGradNorm)}", $"must be positive and finite; got {e.MaxGradNorm}");
    }

    /// <summary>Parses host:port; port 0 (any free port) is allowed for listen addresses.</summary>
    private static PeerAddress Parse(string name, string text)
    {
        if (text.EndsWith(":0", StringComparison.Ordinal) && PeerAddress.TryParse(text[..^2] + ":1", out var any)) return any with { Port = 0 };
        return PeerAddress.TryParse(text, out var address) ? address : throw new NodeConfigurationException($"{Section}:{name}: '{text}' is not host:port (for example 0.0.0.0:7700).");
    }

    private static void Period(string name, TimeSpan value)
    {
        if (value <= TimeSpan.Zero || value > TimeSpan.FromDays(7)) Fail(name, $"must be positive and at most 7 days; got {value}");
    }

    private static void Wrap(string name, Action validate)
    {
        try
        {
            validate();
        }
        catch (ArgumentException e)
        {
            throw new NodeConfigurationException($"{Section}:{name}: {e.Message}", e);
        }
    }

    private static void Fail(string name, string problem) => throw new NodeConfigurationException($"{Section}:{name}: {problem}.");
}
