using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Lookup;
using MoEMesh.Dht.Node;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Routing;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Settings;

namespace MoEMesh.Dht;

/// <summary>
/// One Kademlia node: routing table, record storage, the three RPC handlers, iterative lookups, and the
/// <see cref="IDht"/> facade (get, store, many of each). It reaches the network only through
/// <see cref="IDhtRpc"/>. Split by concern: this file holds state and how the node reacts to peers it
/// sees or loses; <c>DhtNode.Handlers.cs</c> answers RPCs; <c>DhtNode.Get.cs</c> and
/// <c>DhtNode.Store.cs</c> implement the facade; <c>DhtNode.Maintenance.cs</c> bootstraps, refreshes
/// and rejoins. Thread-safe: shared state is touched only under one lock, never across an await.
/// </summary>
public sealed partial class DhtNode : IDht, IDhtRpcHandler, ILookupHost, IAsyncDisposable
{
    private readonly object _gate = new();
    private readonly IDhtRpc _rpc;
    private readonly RoutingTable _table;
    private readonly RecordStore _store;

    /// <summary>How long store-on-join waits to batch newcomers into one pass over the stored keys.</summary>
    private static readonly TimeSpan HandOffDelay = TimeSpan.FromSeconds(1);

    /// <summary>Keys planned per hold of the lock during a store-on-join pass.</summary>
    private const int HandOffChunk = 512;

    private readonly List<DhtContact> _newcomers = [];
    private bool _handOffPending;

    /// <summary>Store-on-join passes over the stored keys so far (each serves every newcomer of its batch).</summary>
    internal int HandOffPasses { get; private set; }
    private readonly RecordValidator _validator;
    private readonly PeerBans _bans;
    private readonly LostContacts _lost;
    private readonly BackgroundWork _background;
    private readonly DhtMetrics _metrics;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly Dictionary<(string Key, bool Latest), Task<DhtValue?>> _searches = [];
    private IReadOnlyList<PeerEndpoint> _initialPeers = [];
    private Task _maintenance = Task.CompletedTask;
    private DateTimeOffset _nextRepublish;
    private bool _republishing;

    /// <summary>Creates a node; call <see cref="BootstrapAsync"/> and then <see cref="Start"/>.</summary>
    /// <param name="peerId">This node's PeerId (its NodeId is the hash inside).</param>
    /// <param name="address">Where this node listens; null for a client-mode node.</param>
    /// <param name="rpc">The network port.</param>
    /// <param name="options">Knobs; validated here.</param>
    /// <param name="time">The clock for expirations, bans, timeouts and maintenance.</param>
    /// <param name="logger">Logs.</param>
    /// <param name="meterFactory">Creates the node's meter; a private meter when null.</param>
    /// <param name="schemas">The rules of the key space's owners (what may be stored under their keys); none by default.</param>
    public DhtNode(PeerId peerId, PeerAddress? address, IDhtRpc rpc, DhtOptions options, TimeProvider time, ILogger<DhtNode>? logger = null, IMeterFactory? meterFactory = null,
        IReadOnlyList<IRecordSchema>? schemas = null)
    {
        SettingsValidation.ThrowIfInvalid(options);
        if (address is null && !options.ClientMode) throw new ArgumentException("A DHT node that is not in client mode needs the address it listens on.", nameof(address));
        PeerId = peerId;
        Id = NodeId.Of(peerId);
        Sender = new DhtSender(peerId, address, options.ClientMode);
        Options = options;
        Time = time;
        _rpc = rpc;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _table = new RoutingTable(Id, options.BucketSize, time.GetUtcNow());
        _validator = new RecordValidator(options, schemas);
        _store = new RecordStore(options, _validator);
        _bans = new PeerBans(options);
        _lost = new LostContacts(options.BucketSize, options.LostContactRetention);
        _background = new BackgroundWork(_logger);
        _metrics = new DhtMetrics(meterFactory);
        // Seeded from the node id, so a simulated swarm repeats exactly.
        _random = new Random(BitConverter.ToInt32(peerId.Hash[..4]));
    }

    /// <summary>This node's PeerId.</summary>
    public PeerId PeerId { get; }

    /// <summary>This node's Kademlia id.</summary>
    public NodeId Id { get; }

    /// <summary>How this node introduces itself in requests (client mode or not: see <see cref="SetClientMode"/>).</summary>
    public DhtSender Sender
    {
        get => Volatile.Read(ref _sender);
        private set => Volatile.Write(ref _sender, value);
    }

    private DhtSender _sender = null!;

    /// <summary>Whether this node acts as a client now: it asks, holds nothing for others, and peers do not add it to their tables.</summary>
    public bool IsClient => Sender.ClientMode;

    /// <summary>The knobs.</summary>
    public DhtOptions Options { get; }

    /// <summary>The clock.</summary>
    public TimeProvider Time { get; }

    /// <summary>Contacts in the routing table.</summary>
    public int RoutingTableSize
    {
        get
        {
            lock (_gate) return _table.Count;
        }
    }

    /// <summary>Record entries held for the network (expired ones until purged).</summary>
    public int StoredRecords
    {
        get
        {
            lock (_gate) return _store.Count;
        }
    }

    /// <summary>Bytes the records held for the network are charged (at most <see cref="DhtOptions.MaxStoredBytes"/>).</summary>
    public long StoredBytes
    {
        get
        {
            lock (_gate) return _store.Bytes;
        }
    }

    /// <summary>Whether this node holds unexpired records under <paramref name="key"/> for the network.</summary>
    public bool Holds(string key)
    {
        var now = Time.GetUtcNow();
        lock (_gate) return _store.Get(key, now).Count > 0;
    }

    /// <summary>The round trip of a ping to <paramref name="peer"/>; null when it does not answer as itself within RpcTimeout.</summary>
    public async Task<TimeSpan?> RoundTripAsync(PeerEndpoint peer, CancellationToken cancellationToken)
    {
        long start = Time.GetTimestamp();
        var result = await _rpc.PingAsync(Sender, peer, Time.GetUtcNow() + Options.RpcTimeout, cancellationToken);
        return result.IsOk && (peer.PeerId is null || result.Value == peer.PeerId) ? Time.GetElapsedTime(start) : null;
    }

    /// <summary>A snapshot of the routing table.</summary>
    public IReadOnlyList<DhtContact> Contacts
    {
        get
        {
            lock (_gate) return _table.Contacts.ToArray();
        }
    }

    /// <summary>The routing table bucket by bucket and the peers banned now (the status page's DHT health).</summary>
    public DhtHealth Health()
    {
        lock (_gate)
        {
            return new DhtHealth(
                _table.Buckets.Select((b, depth) => new DhtBucket(depth, b.Contacts.ToArray(), b.Replacements.Count)).ToArray(),
                _bans.Banned(Time.GetUtcNow()).ToArray());
        }
    }

    /// <summary>Starts the maintenance loop (purge, refresh, rejoin). Call once, after bootstrap.</summary>
    public void Start()
    {
        if (!_maintenance.IsCompleted) throw new InvalidOperationException("The DHT node is already started.");
        lock (_gate) _nextRepublish = RepublishAfter(Time.GetUtcNow());
        _maintenance = MaintainAsync(_stopping.Token);
    }

    /// <summary>Stops maintenance and waits for the node's background work to end.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_stopping.IsCancellationRequested) return;
        // Cancel, not CancelAsync: callbacks run here rather than on the thread pool, which a simulation needs.
        _stopping.Cancel();
        await _maintenance;
        await _background.DrainAsync();
        _metrics.Dispose();
        _stopping.Dispose();
    }

    NodeId ILookupHost.Self => Id;

    List<DhtContact> ILookupHost.Seeds(NodeId target)
    {
        var now = Time.GetUtcNow();
        lock (_gate)
        {
            var seeds = _table.Nearest(target, Options.BucketSize, c => !_bans.IsBanned(c.Id, now));
            // When every known contact is banned, trying them beats giving up.
            return seeds.Count > 0 ? seeds : _table.Nearest(target, Options.BucketSize);
        }
    }

    bool ILookupHost.IsBanned(NodeId id)
    {
        var now = Time.GetUtcNow();
        lock (_gate) return _bans.IsBanned(id, now);
    }

    bool ILookupHost.IsValid(DhtRecord record, DateTimeOffset now) => _validator.Check(record, now) is null;

    void ILookupHost.Abandon(Task straggler) => _background.Run("lookup straggler", () => straggler);

    async Task<DhtRpcResult<IReadOnlyList<FindAnswer>>> ILookupHost.FindAsync(DhtContact target, IReadOnlyList<FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var result = await _rpc.FindAsync(Sender, target, queries, Earliest(deadline), cancellationToken);
        Observe(target, result.Outcome, result.Error);
        return result;
    }

    /// <summary>Runs one lookup over <paramref name="queries"/> and records its metrics.</summary>
    private async Task<LookupResult[]> LookupAsync(IReadOnlyList<FindQuery> queries, LookupMode mode, DateTimeOffset deadline, string operation, CancellationToken cancellationToken)
    {
        var now = Time.GetUtcNow();
        lock (_gate)
            foreach (var q in queries) _table.MarkLookup(q.Target, now);
        var results = await new IterativeLookup(this, mode).RunAsync(queries, deadline, cancellationToken);
        foreach (var r in results) _metrics.Lookup(operation, r);
        return results;
    }

    /// <summary>An RPC deadline: RpcTimeout from now, or <paramref name="operationDeadline"/> when sooner.</summary>
    private DateTimeOffset Earliest(DateTimeOffset operationDeadline)
    {
        var rpcDeadline = Time.GetUtcNow() + Options.RpcTimeout;
        return rpcDeadline < operationDeadline ? rpcDeadline : operationDeadline;
    }

    /// <summary>Updates table and bans from the outcome of an RPC we made.</summary>
    private void Observe(DhtContact contact, CallOutcome outcome, string? error)
    {
        if (outcome is CallOutcome.Ok or CallOutcome.Rejected) Seen(contact);
        else Lost(contact, error ?? outcome.ToString());
    }

    /// <summary>
    /// A contact is alive: clear its ban and add or refresh it. When it is new to the table, hand it the
    /// records it should now hold (store-on-join); when its bucket is full, ping the bucket's
    /// least-recently-seen contact before deciding whom to keep.
    /// </summary>
    private void Seen(DhtContact contact)
    {
        if (contact.Id == Id) return;
        DhtContact? pingFirst;
        bool startHandOff = false;
        lock (_gate)
        {
            _bans.Clear(contact.Id);
            _lost.Remove(contact.Id);
            (bool added, pingFirst) = _table.Add(contact);
            if (added)
            {
                _newcomers.Add(contact);
                startHandOff = !_handOffPending;
                _handOffPending = true;
            }
        }
        if (pingFirst is not null) _background.Run("ping before eviction", () => PingBeforeEvictionAsync(pingFirst));
        if (startHandOff) _background.Run("store-on-join", HandOffToNewcomersAsync);
    }

    /// <summary>A contact failed: ban it, drop it from the table (a replacement takes its place) and keep it among the lost, to try again later.</summary>
    private void Lost(DhtContact contact, string reason)
    {
        TimeSpan ban;
        lock (_gate)
        {
            ban = _bans.Fail(contact.Id, Time.GetUtcNow(), contact.PeerId);
            _table.Remove(contact.Id);
            _lost.Add(contact, Time.GetUtcNow());
        }
        _metrics.RpcFailed();
        LogPeerFailed(_logger, contact.PeerId.ToString(), reason, ban.TotalSeconds);
    }

    /// <summary>
    /// Store-on-join, batched: the contacts new to the table within <see cref="HandOffDelay"/> share one
    /// pass over the stored keys, taken a chunk at a time under the lock, so a flood of new contacts costs
    /// one pass per delay rather than a pass, under the lock, per contact.
    /// </summary>
    private async Task HandOffToNewcomersAsync()
    {
        await Task.Delay(HandOffDelay, Time, _stopping.Token);
        List<DhtContact> newcomers;
        string[] keys;
        lock (_gate)
        {
            newcomers = [.. _newcomers];
            _newcomers.Clear();
            _handOffPending = false;
            keys = [.. _store.Keys];
            HandOffPasses++;
        }
        var handOffs = new Dictionary<DhtContact, List<DhtRecord>>();
        foreach (var chunk in keys.Chunk(HandOffChunk))
        {
            lock (_gate)
                foreach (var key in chunk) PlanHandOff(key, newcomers, handOffs);
            await Task.Yield();
        }
        await Task.WhenAll(handOffs.Select(h => HandOffAsync(h.Key, h.Value)));
    }

    /// <summary>
    /// Which of <paramref name="newcomers"/> should now hold <paramref name="key"/>'s records (Kademlia's
    /// store-on-join, as Hivemind does it): those nearer to the key than the furthest of our NumReplicas
    /// nearest other neighbours, sent only when we are nearer to it than those neighbours, so one copy is
    /// sent, not five.
    /// </summary>
    private void PlanHandOff(string key, List<DhtContact> newcomers, Dictionary<DhtContact, List<DhtRecord>> handOffs)
    {
        var keyId = NodeId.ForKey(key);
        var neighbours = _table.Nearest(keyId, Options.NumReplicas, c => !newcomers.Exists(n => n.Id == c.Id));
        if (neighbours.Count > 0 && !Id.IsCloserTo(keyId, neighbours[0].Id)) return;
        IReadOnlyList<DhtRecord>? records = null;
        foreach (var newcomer in newcomers)
        {
            if (neighbours.Count >= Options.NumReplicas && !newcomer.Id.IsCloserTo(keyId, neighbours[^1].Id)) continue;
            records ??= _store.Get(key, Time.GetUtcNow());
            if (records.Count == 0) return;
            if (!handOffs.TryGetValue(newcomer, out var list)) handOffs[newcomer] = list = [];
            list.AddRange(records);
        }
    }

    private async Task HandOffAsync(DhtContact newcomer, List<DhtRecord> records)
    {
        foreach (var chunk in records.Chunk(Options.MaxKeysPerRpc))
        {
            var result = await _rpc.StoreAsync(Sender, newcomer, chunk, Time.GetUtcNow() + Options.RpcTimeout, _stopping.Token);
            Observe(newcomer, result.Outcome, result.Error);
            if (result.IsFailure) return;
        }
    }

    private async Task PingBeforeEvictionAsync(DhtContact head)
    {
        var result = await _rpc.PingAsync(Sender, head.Endpoint, Time.GetUtcNow() + Options.RpcTimeout, _stopping.Token);
        if (result.IsOk && result.Value == head.PeerId)
        {
            lock (_gate)
            {
                _bans.Clear(head.Id);
                _table.PingAnswered(head);
            }
        }
        else
        {
            Lost(head, result.Error ?? $"answered as {result.Value}");
        }
    }

    [LoggerMessage(EventId = 401, Level = LogLevel.Debug, Message = "DHT peer {PeerId} failed ({Reason}); banned for {BanSeconds} s")]
    private static partial void LogPeerFailed(ILogger logger, string peerId, string reason, double banSeconds);
}
