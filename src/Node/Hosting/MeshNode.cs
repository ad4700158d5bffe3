using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MoEMesh.Dht;
using MoEMesh.Dht.Transport;
using MoEMesh.Experts;
using MoEMesh.Experts.Runtime;
using MoEMesh.Node.Http;
using MoEMesh.Node.Serving;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Routing;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// The running node. Starting: bind the peer port, join the DHT, build the hosted experts (restoring
/// checkpoints), start the batching runtime, announce once, then keep announcing every UpdatePeriod and
/// checkpointing every CheckpointPeriod. Stopping (SIGTERM, SIGINT, or the host stopping): stop
/// announcing, refuse new expert calls and let those in flight finish within DrainTimeout, write every
/// checkpoint, leave the DHT, close the port. Split by concern: <c>MeshNode.Experts.cs</c> builds and
/// checkpoints experts, <c>MeshNode.Announcer.cs</c> announces them, <c>MeshNode.Models.cs</c> holds
/// models and answers queries.
/// </summary>
public sealed partial class MeshNode(NodeOptions options, PeerIdentity identity, ExpertRegistry registry, TimeProvider time,
    ILoggerFactory loggers, IMeterFactory meters) : IHostedLifecycleService, IAsyncDisposable
{
    private readonly ILogger _logger = loggers.CreateLogger<MeshNode>();
    private readonly CancellationTokenSource _stopping = new();
    private readonly CancellationTokenSource _stopAnnouncing = new();
    private PeerListener? _listener;
    private PeerServer? _server;
    private PeerConnectionPool? _pool;
    private BatchingRuntime? _runtime;
    private ExpertRpcHandler? _handler;
    private NodeMetrics? _metrics;
    private Task _background = Task.CompletedTask;
    private Task _computeLoop = Task.CompletedTask;
    private PeerRouter? _router;
    private Task? _stopped;

    /// <summary>This node's identity.</summary>
    public PeerId PeerId => identity.PeerId;

    /// <summary>The options it runs with.</summary>
    public NodeOptions Options => options;

    /// <summary>How its expert batches share this machine's cores (the node daemon applies the GEMM threads process-wide).</summary>
    public ComputeBudget Budget { get; } = ComputeBudget.Of(options, Environment.ProcessorCount);

    /// <summary>Where the peer protocol is served (port 0 resolved); set once started.</summary>
    public PeerAddress ListenAddress { get; private set; }

    /// <summary>The addresses announced to other peers.</summary>
    public IReadOnlyList<string> AnnounceAddresses { get; private set; } = [];

    /// <summary>The DHT node; set once started.</summary>
    public DhtNode Dht { get; private set; } = null!;

    /// <summary>Experts in the DHT; set once started.</summary>
    public ExpertDirectory Directory { get; private set; } = null!;

    /// <summary>Model files in the DHT; set once started.</summary>
    public ModelDirectory Models { get; private set; } = null!;

    /// <summary>Calls to other peers.</summary>
    public IPeerTransport Transport { get; private set; } = null!;

    /// <summary>When the node started.</summary>
    public DateTimeOffset StartedAt { get; private set; }

    /// <summary>Time from process start to the first announcement of this node's experts.</summary>
    public TimeSpan? AnnouncedAfter { get; private set; }

    /// <summary>
    /// This node's own experts reached without the network, through the batching runtime that also serves
    /// remote callers: the local fallback of a gating layer run here. Set once started.
    /// </summary>
    public IExpertInvoker LocalExperts { get; private set; } = null!;

    /// <summary>The uids this node hosts.</summary>
    public IReadOnlyCollection<ExpertUid> HostedUids => Experts.Values.Select(e => e.Uid).ToArray();

    /// <summary>Recent latency and failures of the peers this node called; shared by its gating layers. Set once started.</summary>
    public PeerHealth Health { get; private set; } = null!;

    internal IReadOnlyDictionary<string, HostedExpert> Experts { get; private set; } = new Dictionary<string, HostedExpert>();

    /// <summary>
    /// A mixture-of-experts layer gated on this node: it finds experts through this node's DHT, calls them
    /// over its transport with <see cref="NodeOptions.Routing"/> (its own experts without a socket), and
    /// falls back to the experts this node hosts.
    /// </summary>
    public MixtureOfExperts CreateMixtureOfExperts(GatingNetwork gate, MixtureOfExpertsOptions layer) =>
        (MixtureFactory ?? throw new InvalidOperationException("The node has not started: start it before creating gating layers on it.")).Create(gate, layer);

    /// <summary>Makes this node's gating layers (see <see cref="CreateMixtureOfExperts"/>); set once started.</summary>
    public MixtureOfExpertsFactory MixtureFactory { get; private set; } = null!;

    /// <inheritdoc />
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        StartedAt = time.GetUtcNow();
        var protocol = options.Protocol;
        protocol.UseTls = options.UseTls;
        if (!options.UseTls) LogTlsOff(_logger);
        _router = new PeerRouter(time, loggers.CreateLogger<PeerRouter>());
        Relaying = CreateRelay();
        var server = _server = new PeerServer(identity, _router, protocol, time, loggers.CreateLogger<PeerServer>()) { Relay = Relaying };
        var listen = options.ListenAddress;
        try
        {
            _listener = PeerListener.Start(server, new IPEndPoint(IPAddress.Parse(listen.Host), listen.Port), loggers.CreateLogger<PeerListener>());
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AddressNotAvailable or SocketError.AccessDenied)
        {
            throw new NodeConfigurationException($"{NodeOptions.Section}:{nameof(NodeOptions.Listen)}: {NodeHost.CannotListen(listen.ToString(), e.SocketErrorCode)} (--listen).", e);
        }
        ListenAddress = _listener.Address;
        AnnounceAddresses = options.AnnounceAddresses.Count > 0
            ? options.AnnounceAddresses
            : [new PeerAddress(ListenAddress.Host is "0.0.0.0" or "::" ? "127.0.0.1" : ListenAddress.Host, ListenAddress.Port).ToString()];
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Builds what needs no peer (DHT node, held models, batching runtime, queries); joining the swarm,
    /// choosing and building the experts and announcing wait for <see cref="StartedAsync"/>, once both
    /// ports are bound, so a node that cannot serve never joins or announces.
    /// </remarks>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var router = _router!;
        _pool = new PeerConnectionPool(identity, options.Protocol, time, loggers.CreateLogger<PeerConnectionPool>());
        Transport = new TcpPeerTransport(_pool, time);
        options.Dht.ClientMode = options.ClientMode;
        Dht = new DhtNode(identity.PeerId, options.ClientMode ? null : PeerAddress.Parse(AnnounceAddresses[0]), new DhtRpcClient(Transport), options.Dht, time,
            loggers.CreateLogger<DhtNode>(), meters, [new KeySchema()]);
        router.MapDht(Dht, options.Dht);
        Directory = new ExpertDirectory(Dht, time);
        Models = new ModelDirectory(Dht);
        HoldModels(router);
        HoldWeights(router);
        StartBuildingKnownExperts();
        _runtime = new BatchingRuntime(options.Batching.WithConcurrentBatches(Budget.ConcurrentBatches), time, loggers.CreateLogger<BatchingRuntime>(), meters);
        _computeLoop = _runtime.RunAsync(_stopping.Token);
        _background = _computeLoop; // what a stop waits for if the start fails before StartedAsync ends
        _metrics = new NodeMetrics(meters, this);
        Health = new PeerHealth(options.Routing, time);
        MapReachability(router);
        router.Map(NodeStatus.Method, (_, _) => ValueTask.FromResult(PeerResponse.Ok(payload: NodeStatus.Of(this).ToJson())));
        ServeQueries(router);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Runs once every hosted service started (the HTTP port is bound too): joins the swarm, chooses and
    /// builds the experts (free uids of a pattern are those the DHT shows no host for), serves and announces them.
    /// </remarks>
    public async Task StartedAsync(CancellationToken cancellationToken)
    {
        await Dht.BootstrapAsync(options.InitialPeerEndpoints, cancellationToken);
        Dht.Start();
        LogJoined(_logger, identity.PeerId.ToString(), ListenAddress.ToString(), Dht.RoutingTableSize);
        await CheckReachabilityAtStartAsync(cancellationToken);

        Experts = await CreateExpertsAsync(cancellationToken);
        await AdoptPublishedWeightsAsync(cancellationToken);
        _handler = new ExpertRpcHandler(Experts, _runtime!, options.Batching, options.Serving, time, _metrics!, PeerId);
        LocalExperts = new LocalExpertInvoker(Experts, _runtime!, time);
        MixtureFactory = new MixtureOfExpertsFactory(Directory, new SelfShortCircuitInvoker(PeerId, LocalExperts, new RemoteExpertInvoker(Transport)), Health, options.Routing, time,
            new IncompatibleHosts(loggers.CreateLogger<IncompatibleHosts>()),
            new LocalExperts(LocalExperts, Experts.Values.Select(e => new LocalExpert(e.Uid, e.Backend.Spec.Type, e.SchemaHash)).ToArray()), new RoutingTelemetry(meters, loggers.CreateLogger<RoutingTelemetry>()));
        _handler.Map(_router!);
        if (Experts.Count > 0 || HeldModels.Count > 0 || HeldSnapshots.Count > 0)
        {
            await AnnounceAsync(cancellationToken);
            AnnouncedAfter = time.GetUtcNow() - new DateTimeOffset(Process.GetCurrentProcess().StartTime.ToUniversalTime());
            LogAnnounced(_logger, Words.Count(Experts.Count, "expert"), AnnouncedAfter.Value.TotalMilliseconds);
        }
        _background = Task.WhenAll(_computeLoop, AnnounceLoopAsync(_stopAnnouncing.Token), CheckpointLoopAsync(_stopping.Token), ModelSyncLoopAsync(_stopAnnouncing.Token),
            LoadOptimizerStateAsync(_stopping.Token), PublishLoopAsync(_stopAnnouncing.Token), ReconcileLoopAsync(_stopAnnouncing.Token), ReachabilityLoopAsync(_stopAnnouncing.Token));
        Ready = true;
    }

    /// <summary>Whether the node has joined the swarm and built and announced its experts (its status says so; scripts wait for it).</summary>
    public bool Ready { get; private set; }

    /// <inheritdoc />
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    /// <remarks>Stops the node if the host did not (a start that failed leaves its listener, pool and loops to this).</remarks>
    public ValueTask DisposeAsync() => new(StopAsync(CancellationToken.None));

    /// <inheritdoc />
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <inheritdoc />
    /// <remarks>Stops once; a second call waits for the first.</remarks>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (_stopping) return _stopped ??= StopOnceAsync();
    }

    private async Task StopOnceAsync()
    {
        _stopAnnouncing.Cancel();
        // Queries waiting for a batch are answered (their experts are still served) before the drain.
        if (_catalog is not null) await _catalog.DisposeAsync();
        if (_handler is not null)
        {
            _handler.Drain();
            var until = time.GetUtcNow() + options.DrainTimeout;
            while (_handler.InFlight > 0 && time.GetUtcNow() < until) await Task.Delay(TimeSpan.FromMilliseconds(20), time, CancellationToken.None);
            if (_handler.InFlight > 0) LogDrainTimedOut(_logger, _handler.InFlight, options.DrainTimeout.TotalSeconds);
        }
        _stopping.Cancel();
        await _background;
        // Experts built early for a start that failed before taking them: their build ends (or fails) here.
        if (_known is not null) await _known.ContinueWith(static _ => { }, TaskScheduler.Default);
        if (Ready) await PublishOnStopAsync();
        UnsavedExperts = SaveCheckpoints();
        await ReleaseRelaysAsync();
        if (Dht is not null) await Dht.DisposeAsync();
        if (_listener is not null) await _listener.DisposeAsync();
        Relaying?.Dispose(); // after the listener: its circuits are closed by then
        if (_pool is not null) await _pool.DisposeAsync();
        if (!Ready) return; // a start that failed: nothing was served, nothing to report
        if (UnsavedExperts.Count == 0) LogStopped(_logger, Words.Count(Experts.Count, "expert"));
        else LogStoppedUnsaved(_logger, string.Join(", ", UnsavedExperts), Words.Count(Experts.Count - UnsavedExperts.Count, "expert"));
    }

    /// <summary>The experts whose checkpoint could not be written when the node stopped (their training since the last checkpoint is lost).</summary>
    public IReadOnlyList<string> UnsavedExperts { get; private set; } = [];

    /// <summary>
    /// Runs <paramref name="work"/> as <see cref="EveryAsync"/> does; a round that fails (other than by the stop)
    /// is logged by <paramref name="logError"/> and the next one runs on schedule.
    /// </summary>
    private Task EveryLoggedAsync(TimeSpan period, Func<CancellationToken, Task> work, Action<ILogger, Exception> logError, CancellationToken stopping) =>
        EveryAsync(period, async token =>
        {
            try
            {
                await work(token);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logError(_logger, e);
            }
        }, stopping);

    /// <summary>
    /// Runs <paramref name="work"/> every <paramref name="period"/>, start to start (work that takes longer than
    /// a period is followed at once by the next), until <paramref name="stopping"/> is cancelled: announcements
    /// that last two periods are renewed in time even when announcing is slow.
    /// </summary>
    private async Task EveryAsync(TimeSpan period, Func<CancellationToken, Task> work, CancellationToken stopping)
    {
        try
        {
            var next = time.GetUtcNow() + period;
            while (true)
            {
                var wait = next - time.GetUtcNow();
                if (wait > TimeSpan.Zero) await Task.Delay(wait, time, stopping);
                else stopping.ThrowIfCancellationRequested();
                next = time.GetUtcNow() + period;
                await work(stopping);
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 507, Level = LogLevel.Warning, Message = "TLS is off (--no-tls): peer traffic is neither encrypted nor authenticated after the handshake, so anyone on the path can read and change it. Use this only on a network you trust, such as a loopback testnet")]
    private static partial void LogTlsOff(ILogger logger);

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Node {PeerId} listening on {Address}; DHT routing table holds {Contacts} contacts")]
    private static partial void LogJoined(ILogger logger, string peerId, string address, int contacts);

    [LoggerMessage(EventId = 501, Level = LogLevel.Information, Message = "Announced {Experts} {ElapsedMs:F0} ms after process start")]
    private static partial void LogAnnounced(ILogger logger, string experts, double elapsedMs);

    [LoggerMessage(EventId = 502, Level = LogLevel.Warning, Message = "{InFlight} expert calls were still running after the {DrainSeconds} s drain timeout; stopping anyway")]
    private static partial void LogDrainTimedOut(ILogger logger, int inFlight, double drainSeconds);

    [LoggerMessage(EventId = 503, Level = LogLevel.Information, Message = "Stopped; checkpoints of {Experts} written")]
    private static partial void LogStopped(ILogger logger, string experts);

    [LoggerMessage(EventId = 508, Level = LogLevel.Error, Message = "Stopped; the checkpoints of {Unsaved} could NOT be written (see above); those of {Saved} were")]
    private static partial void LogStoppedUnsaved(ILogger logger, string unsaved, string saved);
}
