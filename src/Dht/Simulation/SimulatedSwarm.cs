using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht.Simulation;

/// <summary>
/// A swarm of DHT nodes on a <see cref="SimulatedNetwork"/>, for tests, benchmarks and experiments. Node
/// i has the identity <see cref="PeerIdentity.FromSeed"/> of a number made from the seed and i and the address <c>node-i:7000</c>; each
/// joins through a random live member. Everything is seeded, so under <see cref="SimulationRunner"/> a run
/// repeats exactly. Use from inside <see cref="SimulationRunner.Run{T}"/>.
/// </summary>
public sealed class SimulatedSwarm : IAsyncDisposable
{
    private readonly List<SwarmMember> _members = [];
    private readonly Random _random;
    private readonly int _seed;
    private readonly Func<DhtOptions> _options;
    private readonly IReadOnlyList<Records.IRecordSchema>? _schemas;

    /// <summary>Creates an empty swarm.</summary>
    /// <param name="clock">Virtual time.</param>
    /// <param name="links">Latency and loss.</param>
    /// <param name="seed">Fixes identities, latencies, losses and choices.</param>
    /// <param name="options">Options for each node (a fresh instance per node); defaults when null.</param>
    /// <param name="schemas">The key schemas every node enforces; none when null.</param>
    public SimulatedSwarm(SimulationClock clock, SimulatedLinks? links = null, int seed = 0, Func<DhtOptions>? options = null, IReadOnlyList<Records.IRecordSchema>? schemas = null)
    {
        Clock = clock;
        _seed = seed;
        _random = new Random(seed);
        _options = options ?? (() => new DhtOptions());
        _schemas = schemas;
        Network = new SimulatedNetwork(clock, links, seed);
    }

    /// <summary>The clock.</summary>
    public SimulationClock Clock { get; }

    /// <summary>The network.</summary>
    public SimulatedNetwork Network { get; }

    /// <summary>Every member ever added, in order.</summary>
    public IReadOnlyList<SwarmMember> Members => _members;

    /// <summary>Members that are running.</summary>
    public IEnumerable<SwarmMember> Alive => _members.Where(m => m.IsAlive);

    /// <summary>
    /// Adds <paramref name="count"/> nodes, each joining through a random live member: one after another
    /// when <paramref name="spacing"/> is null, else one starting every <paramref name="spacing"/> while
    /// earlier ones are still joining (as when a swarm launches; a long one-by-one join would spend most
    /// of its virtual time on bucket refreshes).
    /// </summary>
    public async Task GrowAsync(int count, TimeSpan? spacing = null, CancellationToken cancellationToken = default)
    {
        if (spacing is not { } gap)
        {
            for (int i = 0; i < count; i++) await AddNodeAsync(clientMode: false, cancellationToken);
            return;
        }
        var joins = new List<Task>();
        for (int i = 0; i < count; i++)
        {
            if (i > 0) await Task.Delay(gap, Clock, cancellationToken);
            joins.Add(AddNodeAsync(clientMode: false, cancellationToken));
        }
        await Task.WhenAll(joins);
    }

    /// <summary>Adds one node and joins it through a random live member (the first node starts the swarm).</summary>
    public async Task<SwarmMember> AddNodeAsync(bool clientMode = false, CancellationToken cancellationToken = default)
    {
        int index = _members.Count;
        var identity = PeerIdentity.FromSeed(unchecked(_seed * 1_000_003 + index));
        var member = new SwarmMember(index, identity, new PeerAddress($"node-{index}", 7000), clientMode);
        _members.Add(member);
        await StartAsync(member, cancellationToken);
        return member;
    }

    /// <summary>A random live member, optionally excluding some.</summary>
    public SwarmMember RandomAlive(Func<SwarmMember, bool>? except = null)
    {
        var alive = Alive.Where(m => except is null || !except(m)).ToArray();
        if (alive.Length == 0) throw new InvalidOperationException("No live member is left in the swarm.");
        return alive[_random.Next(alive.Length)];
    }

    /// <summary>A seeded random number in [0, <paramref name="max"/>).</summary>
    public int Next(int max) => _random.Next(max);

    /// <summary>Kills a member: it stops answering and its node stops.</summary>
    public async Task KillAsync(SwarmMember member)
    {
        if (!member.IsAlive) return;
        Network.Kill(member.Address);
        member.IsAlive = false;
        await member.Node.DisposeAsync();
    }

    /// <summary>Restarts a killed member with the same identity and address and an empty table and store.</summary>
    public Task RestartAsync(SwarmMember member, CancellationToken cancellationToken = default)
    {
        if (member.IsAlive) throw new InvalidOperationException($"Member {member.Index} is running.");
        return StartAsync(member, cancellationToken);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var m in _members.Where(m => m.IsAlive))
        {
            m.IsAlive = false;
            await m.Node.DisposeAsync();
        }
        foreach (var m in _members) m.Identity.Dispose();
    }

    private async Task StartAsync(SwarmMember member, CancellationToken cancellationToken)
    {
        var options = _options();
        options.ClientMode = member.ClientMode;
        var initial = Alive.Where(m => !m.ClientMode && m != member).ToArray();
        var node = new DhtNode(member.Identity.PeerId, member.ClientMode ? null : member.Address, Network, options, Clock, schemas: _schemas);
        if (!member.ClientMode) Network.Attach(member.Identity.PeerId, member.Address, node);
        member.Node = node;
        member.IsAlive = true;
        if (initial.Length > 0)
        {
            var via = initial[_random.Next(initial.Length)];
            await node.BootstrapAsync([new PeerEndpoint(via.Address, via.Identity.PeerId)], cancellationToken);
        }
        node.Start();
    }
}

/// <summary>One node of a <see cref="SimulatedSwarm"/>.</summary>
public sealed class SwarmMember(int index, PeerIdentity identity, PeerAddress address, bool clientMode)
{
    /// <summary>Position in the swarm.</summary>
    public int Index { get; } = index;

    /// <summary>The node's key (for signing records it owns).</summary>
    public PeerIdentity Identity { get; } = identity;

    /// <summary>The node's address.</summary>
    public PeerAddress Address { get; } = address;

    /// <summary>Whether it runs in client mode.</summary>
    public bool ClientMode { get; } = clientMode;

    /// <summary>The running node (the latest one after a restart).</summary>
    public DhtNode Node { get; internal set; } = null!;

    /// <summary>Whether it is running.</summary>
    public bool IsAlive { get; internal set; }
}
