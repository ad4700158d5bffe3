using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.InMemory;

/// <summary>
/// Many nodes in one process with the same call semantics as TCP (deadlines, cancellation, statuses,
/// the server-side rules of <see cref="PeerRouter"/>) and faults injected per link. Driven by a
/// <see cref="TimeProvider"/> and a seed, so a run repeats exactly.
/// </summary>
public sealed class InMemoryNetwork(TimeProvider time, int seed = 0)
{
    private readonly Dictionary<PeerAddress, Node> _nodes = [];
    private readonly Dictionary<(PeerAddress From, PeerAddress To), LinkFaults> _faults = [];
    private readonly Random _random = new(seed);

    /// <summary>Adds a node that answers with <paramref name="router"/>; returns the transport its own calls go through.</summary>
    public IPeerTransport Join(PeerId peer, PeerAddress address, PeerRouter router)
    {
        lock (_nodes)
        {
            if (_nodes.ContainsKey(address)) throw new ArgumentException($"Address {address} is already taken in this network.", nameof(address));
            _nodes[address] = new Node(peer, router);
        }
        return new Transport(this, address);
    }

    /// <summary>Sets the faults of the link from <paramref name="from"/> to <paramref name="to"/> (one direction).</summary>
    public void SetFaults(PeerAddress from, PeerAddress to, LinkFaults faults)
    {
        lock (_nodes) _faults[(from, to)] = faults;
    }

    /// <summary>Cuts every link between the two sides, both ways.</summary>
    public void Partition(IEnumerable<PeerAddress> sideA, IEnumerable<PeerAddress> sideB)
    {
        var b = sideB.ToArray();
        foreach (var a in sideA)
            foreach (var other in b)
            {
                SetFaults(a, other, new LinkFaults(Partitioned: true));
                SetFaults(other, a, new LinkFaults(Partitioned: true));
            }
    }

    /// <summary>Clears every fault.</summary>
    public void Heal()
    {
        lock (_nodes) _faults.Clear();
    }

    /// <summary>Stops a node: calls in flight to or from it fail, new ones are refused.</summary>
    public void Kill(PeerAddress address)
    {
        lock (_nodes) NodeAt(address).Kill();
    }

    /// <summary>Starts a killed node again.</summary>
    public void Revive(PeerAddress address)
    {
        lock (_nodes) NodeAt(address).Revive();
    }

    private Node NodeAt(PeerAddress address) =>
        _nodes.TryGetValue(address, out var node) ? node : throw new ArgumentException($"No node at {address}.", nameof(address));

    private async Task<PeerResponse> CallAsync(PeerAddress from, PeerEndpoint target, PeerRequest request, CancellationToken cancellationToken)
    {
        var remaining = request.Deadline - time.GetUtcNow();
        if (remaining <= TimeSpan.Zero)
            return PeerResponse.Error(StatusCode.DeadlineExceeded, $"{request.Method} to {target}: the deadline passed before the call was sent.");
        Node caller, callee;
        LinkFaults there, back;
        bool lostThere, lostBack;
        lock (_nodes)
        {
            caller = NodeAt(from);
            if (!_nodes.TryGetValue(target.Address, out callee!) || !callee.Alive || !caller.Alive)
                return PeerResponse.Error(StatusCode.Unavailable, $"Cannot reach peer {target}: connection refused.");
            there = _faults.GetValueOrDefault((from, target.Address), LinkFaults.None);
            back = _faults.GetValueOrDefault((target.Address, from), LinkFaults.None);
            lostThere = there.Partitioned || _random.NextDouble() < there.DropRate;
            lostBack = back.Partitioned || _random.NextDouble() < back.DropRate;
        }
        if (target.PeerId is { } want && want != callee.PeerId)
            return PeerResponse.Error(StatusCode.Unavailable, $"Cannot reach peer {target}: the peer there is {callee.PeerId}.");

        using var deadline = new CancellationTokenSource(remaining, time);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token, caller.Lifetime, callee.Lifetime);
        try
        {
            if (lostThere) await Task.Delay(Timeout.InfiniteTimeSpan, time, limit.Token);
            if (there.Delay > TimeSpan.Zero) await Task.Delay(there.Delay, time, limit.Token);
            var served = new PeerRequest(request.Method, request.Header, request.Payload, request.Deadline) { Caller = caller.PeerId };
            var response = await callee.Router.DispatchAsync(served, limit.Token);
            try
            {
                if (lostBack) await Task.Delay(Timeout.InfiniteTimeSpan, time, limit.Token);
                if (back.Delay > TimeSpan.Zero) await Task.Delay(back.Delay, time, limit.Token);
            }
            catch
            {
                response.Dispose();
                throw;
            }
            limit.Token.ThrowIfCancellationRequested();
            return response;
        }
        catch (OperationCanceledException)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (!caller.Alive || !callee.Alive)
                return PeerResponse.Error(StatusCode.Unavailable, $"Connection to {target} lost: the node stopped.");
            return PeerResponse.Error(StatusCode.DeadlineExceeded, $"{request.Method} to {target}: no answer within {remaining.TotalMilliseconds:F0} ms.");
        }
    }

    private sealed class Node(PeerId peerId, PeerRouter router)
    {
        private CancellationTokenSource _lifetime = new();

        public PeerId PeerId { get; } = peerId;

        public PeerRouter Router { get; } = router;

        public bool Alive { get; private set; } = true;

        public CancellationToken Lifetime => _lifetime.Token;

        public void Kill()
        {
            Alive = false;
            _lifetime.Cancel();
        }

        public void Revive()
        {
            if (Alive) return;
            _lifetime = new CancellationTokenSource();
            Alive = true;
        }
    }

    private sealed class Transport(InMemoryNetwork network, PeerAddress self) : IPeerTransport
    {
        public Task<PeerResponse> CallAsync(PeerEndpoint target, PeerRequest request, CancellationToken cancellationToken) =>
            network.CallAsync(self, target, request, cancellationToken);
    }
}
