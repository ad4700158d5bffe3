using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht.Simulation;

/// <summary>
/// The DHT's network in one process: calls go straight to the target node's handler after a simulated
/// latency each way, may be lost, and reach nothing when the target is killed (the caller hears nothing
/// until its deadline, as with a host that vanished). Nodes can be killed and restarted at an address,
/// and the network split in two and healed.
/// Driven by a seed and a <see cref="TimeProvider"/>; under <see cref="SimulationRunner"/> a run repeats
/// exactly. One instance serves every node (the sender is part of each call).
/// </summary>
public sealed class SimulatedNetwork(TimeProvider time, SimulatedLinks? links = null, int seed = 0) : IDhtRpc
{
    private readonly Dictionary<PeerAddress, Host> _hosts = [];
    private readonly SimulatedLinks _links = links ?? SimulatedLinks.Default;
    private readonly Random _random = new(seed);
    private readonly HashSet<(PeerAddress, PeerAddress)> _cut = [];

    /// <summary>RPCs sent so far.</summary>
    public long Rpcs { get; private set; }

    /// <summary>Starts serving <paramref name="handler"/> at <paramref name="address"/> (a restart replaces a killed node).</summary>
    public void Attach(PeerId peerId, PeerAddress address, IDhtRpcHandler handler)
    {
        if (_hosts.TryGetValue(address, out var existing) && existing.Alive)
            throw new InvalidOperationException($"A live node already serves {address}; kill it before attaching another.");
        _hosts[address] = new Host(peerId, handler);
    }

    /// <summary>Stops the node at <paramref name="address"/>: calls to it go unanswered, its own calls fail.</summary>
    public void Kill(PeerAddress address)
    {
        if (!_hosts.TryGetValue(address, out var host)) throw new ArgumentException($"No node at {address}.", nameof(address));
        host.Alive = false;
    }

    /// <summary>Cuts every link between the two sides, both ways: messages across are lost, as on a network split in two.</summary>
    public void Partition(IEnumerable<PeerAddress> sideA, IEnumerable<PeerAddress> sideB)
    {
        var b = sideB.ToArray();
        foreach (var a in sideA)
            foreach (var other in b)
            {
                _cut.Add((a, other));
                _cut.Add((other, a));
            }
    }

    /// <summary>Restores every cut link.</summary>
    public void Heal() => _cut.Clear();

    /// <summary>Whether a live node serves <paramref name="address"/>.</summary>
    public bool IsAlive(PeerAddress address) => _hosts.TryGetValue(address, out var host) && host.Alive;

    /// <inheritdoc />
    public Task<DhtRpcResult<PeerId>> PingAsync(DhtSender from, PeerEndpoint target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        DeliverAsync(from, target, h => h.HandlePing(from), deadline, cancellationToken);

    /// <inheritdoc />
    public Task<DhtRpcResult<IReadOnlyList<StoreOutcome>>> StoreAsync(DhtSender from, DhtContact target, IReadOnlyList<DhtRecord> records, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        DeliverAsync(from, target.Endpoint, h => h.HandleStore(from, records), deadline, cancellationToken);

    /// <inheritdoc />
    public Task<DhtRpcResult<IReadOnlyList<FindAnswer>>> FindAsync(DhtSender from, DhtContact target, IReadOnlyList<FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        DeliverAsync(from, target.Endpoint, h => h.HandleFind(from, queries), deadline, cancellationToken);

    private async Task<DhtRpcResult<T>> DeliverAsync<T>(DhtSender from, PeerEndpoint target, Func<IDhtRpcHandler, T> handle, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        Rpcs++;
        var start = time.GetUtcNow();
        var remaining = deadline - start;
        if (remaining <= TimeSpan.Zero) return DhtRpcResult<T>.Failed(CallOutcome.Timeout, $"the deadline passed before the call to {target} was sent");
        if (from.Address is { } origin && _hosts.TryGetValue(origin, out var sender) && !sender.Alive)
            return DhtRpcResult<T>.Failed(CallOutcome.Unreachable, $"the sender {origin} is down");
        if (!_hosts.TryGetValue(target.Address, out var host)) return DhtRpcResult<T>.Failed(CallOutcome.Unreachable, $"nothing listens at {target.Address}");
        var there = _links.SampleLatency(_random);
        var back = _links.SampleLatency(_random);
        bool lost = _random.NextDouble() < _links.LossRate || _random.NextDouble() < _links.LossRate;
        bool cut = from.Address is { } source && _cut.Contains((source, target.Address));
        if (!host.Alive || lost || cut || there >= remaining) return await SilenceAsync<T>(target, deadline, cancellationToken);
        await Task.Delay(there, time, cancellationToken);
        if (!host.Alive || !ReferenceEquals(_hosts[target.Address], host)) return await SilenceAsync<T>(target, deadline, cancellationToken);
        if (target.PeerId is { } expected && expected != host.PeerId)
            return DhtRpcResult<T>.Failed(CallOutcome.Unreachable, $"the peer at {target.Address} is {host.PeerId}, not {expected}");
        var answer = handle(host.Handler);
        if (time.GetUtcNow() + back >= deadline) return await SilenceAsync<T>(target, deadline, cancellationToken);
        await Task.Delay(back, time, cancellationToken);
        return DhtRpcResult<T>.Answer(answer);
    }

    private async Task<DhtRpcResult<T>> SilenceAsync<T>(PeerEndpoint target, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var wait = deadline - time.GetUtcNow();
        if (wait > TimeSpan.Zero) await Task.Delay(wait, time, cancellationToken);
        return DhtRpcResult<T>.Failed(CallOutcome.Timeout, $"no answer from {target} before the deadline");
    }

    private sealed class Host(PeerId peerId, IDhtRpcHandler handler)
    {
        public PeerId PeerId { get; } = peerId;

        public IDhtRpcHandler Handler { get; } = handler;

        public bool Alive { get; set; } = true;
    }
}
