using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Routing.Calling;

/// <summary>
/// What this gating node has seen of each expert host: recent latencies (last 64 answers) and consecutive
/// failures. A failed host backs off for PeerBackoff × 2^(n−1) (at most PeerBackoffMax); a success clears it.
/// Hosts of one uid are tried healthy first, then by announced queue depth and recent p95; backed-off
/// hosts come last rather than not at all, so an expert whose every host is backed off is still tried.
/// </summary>
public sealed class PeerHealth(RoutingOptions options, TimeProvider time)
{
    private const int Window = 64;
    private readonly Dictionary<PeerId, State> _peers = [];

    /// <summary>Records how a call to <paramref name="host"/> ended.</summary>
    public void Record(PeerId host, CallOutcome outcome, TimeSpan elapsed)
    {
        lock (_peers)
        {
            if (!_peers.TryGetValue(host, out var state)) _peers[host] = state = new State();
            if (outcome == CallOutcome.Ok)
            {
                state.Failures = 0;
                state.BackedOffUntil = DateTimeOffset.MinValue;
                state.Latencies.Add(elapsed);
            }
            else if (outcome is CallOutcome.Timeout or CallOutcome.Unreachable)
            {
                state.Failures++;
                var backoff = TimeSpan.FromTicks((long)Math.Min(options.PeerBackoffMax.Ticks, options.PeerBackoff.Ticks * Math.Pow(2, Math.Min(state.Failures - 1, 30))));
                state.BackedOffUntil = time.GetUtcNow() + backoff;
            }
        }
    }

    /// <summary>Whether <paramref name="host"/> is backed off now.</summary>
    public bool IsBackedOff(PeerId host)
    {
        lock (_peers) return _peers.TryGetValue(host, out var s) && s.BackedOffUntil > time.GetUtcNow();
    }

    /// <summary>The 95th percentile of recent answer times of <paramref name="host"/>, or null before any answer.</summary>
    public TimeSpan? P95(PeerId host)
    {
        lock (_peers)
        {
            if (!_peers.TryGetValue(host, out var s)) return null;
            return LatencyWindow.Percentile(s.Latencies.Sorted(), 0.95) is { } p95 ? TimeSpan.FromMilliseconds(p95) : null;
        }
    }

    /// <summary>The hosts of one uid in the order to try them.</summary>
    public IReadOnlyList<ExpertHostInfo> Order(IEnumerable<ExpertHostInfo> hosts) =>
        hosts.OrderBy(h => IsBackedOff(h.Host))
            .ThenBy(h => h.Load.QueueDepth)
            .ThenBy(h => P95(h.Host) ?? TimeSpan.Zero)
            .ThenBy(h => h.Host.ToString(), StringComparer.Ordinal)
            .ToArray();

    private sealed class State
    {
        public LatencyWindow Latencies { get; } = new(Window);

        public int Failures { get; set; }

        public DateTimeOffset BackedOffUntil { get; set; } = DateTimeOffset.MinValue;
    }
}
