using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Routing.Calling;

/// <summary>
/// What this gating node has seen of each expert host: recent latencies (last 64 answers), consecutive
/// failures, calls in flight and a load cost. A failed host backs off for PeerBackoff × 2^(n−1) (at most
/// PeerBackoffMax); a success clears it. Hosts of one uid are tried healthy first, then cheapest first;
/// backed-off hosts come last rather than not at all, so an expert whose every host is backed off is still
/// tried. A host's cost is its latency as this node measured it (a moving average that a slower answer
/// replaces at once and a faster one pulls down by a quarter of the difference) times its calls in flight
/// plus one, so a busy or overloaded host gets fewer calls and
/// concurrent calls spread over replicas. While a host gives no answers its average decays toward zero
/// (e^(−t / <see cref="RoutingOptions.LoadDecay"/>)), so a host that was slow is tried again later; a call cut
/// unanswered after longer than the average raises it. A host never measured costs what it announced: its
/// p50 (at least 1 ms) times its queue depth plus one.
/// </summary>
public sealed class PeerHealth(RoutingOptions options, TimeProvider time)
{
    private const int Window = 64;
    private const double FasterAnswerWeight = 0.25;

    /// <summary>The least a never-measured host's announced latency counts for (a host that has served nothing announces 0), so its queue and the calls in flight to it still count.</summary>
    private const double MinAnnouncedMs = 1;
    private readonly Dictionary<PeerId, State> _peers = [];
    private readonly Dictionary<PeerId, FlaggedHost> _flagged = [];
    private long _audits, _disputes;

    /// <summary>
    /// Flags <paramref name="host"/> as answering unlike the replicas that announce the same weights (an
    /// audit's majority): it is no longer called, until this node restarts.
    /// </summary>
    public void Flag(PeerId host, string why)
    {
        lock (_peers) _flagged.TryAdd(host, new FlaggedHost(host, why, time.GetUtcNow()));
    }

    /// <summary>Whether <paramref name="host"/> is flagged.</summary>
    public bool IsFlagged(PeerId host)
    {
        lock (_peers) return _flagged.ContainsKey(host);
    }

    /// <summary>The hosts flagged, in the order they were.</summary>
    public IReadOnlyList<FlaggedHost> Flagged
    {
        get
        {
            lock (_peers) return _flagged.Values.OrderBy(f => f.At).ToArray();
        }
    }

    /// <summary>Audits that compared at least two answers.</summary>
    public long Audits => Interlocked.Read(ref _audits);

    /// <summary>Audits of two answers that disagreed (no majority to flag either).</summary>
    public long Disputes => Interlocked.Read(ref _disputes);

    /// <summary>Counts an audit that compared answers.</summary>
    public void RecordAudit() => Interlocked.Increment(ref _audits);

    /// <summary>Counts an audit of two answers that disagreed.</summary>
    public void RecordDispute() => Interlocked.Increment(ref _disputes);

    /// <summary>
    /// Records how a call to <paramref name="host"/> ended. Only forward calls' answer times count toward its
    /// latency (p95 and cost): replicas are chosen, and hedged, for forward calls, and a backward call, which
    /// also steps the optimizer, takes longer; every call's failure or success counts toward back-off.
    /// </summary>
    public void Record(PeerId host, CallOutcome outcome, TimeSpan elapsed, bool forward = true)
    {
        lock (_peers)
        {
            if (!_peers.TryGetValue(host, out var state)) _peers[host] = state = new State();
            if (outcome == CallOutcome.Ok)
            {
                state.Failures = 0;
                state.BackedOffUntil = DateTimeOffset.MinValue;
                if (!forward) return;
                state.Latencies.Add(elapsed);
                state.Observe(elapsed.TotalMilliseconds, time.GetTimestamp(), time, options.LoadDecay);
            }
            else if (outcome is CallOutcome.Timeout or CallOutcome.Unreachable)
            {
                state.Failures++;
                var backoff = TimeSpan.FromTicks((long)Math.Min(options.PeerBackoffMax.Ticks, options.PeerBackoff.Ticks * Math.Pow(2, Math.Min(state.Failures - 1, 30))));
                state.BackedOffUntil = time.GetUtcNow() + backoff;
            }
        }
    }

    /// <summary>
    /// Records that a call to <paramref name="host"/> was cut after <paramref name="elapsed"/> without an
    /// answer (the grace period ended, or a hedge answered first): its answer would have taken at least that
    /// long, so a longer wait raises its cost as a slow answer would; health and p95 are left alone.
    /// </summary>
    public void RecordCut(PeerId host, TimeSpan elapsed)
    {
        lock (_peers)
            if (_peers.TryGetValue(host, out var state)) state.AtLeast(elapsed.TotalMilliseconds, time.GetTimestamp(), time, options.LoadDecay);
    }

    /// <summary>Notes that a call to <paramref name="host"/> was sent; <see cref="Ended"/> must follow, whatever its outcome.</summary>
    public void Started(PeerId host)
    {
        lock (_peers)
        {
            if (!_peers.TryGetValue(host, out var state)) _peers[host] = state = new State();
            state.InFlight++;
        }
    }

    /// <summary>Notes that a call to <paramref name="host"/> that <see cref="Started"/> has ended.</summary>
    public void Ended(PeerId host)
    {
        lock (_peers)
            if (_peers.TryGetValue(host, out var state) && state.InFlight > 0) state.InFlight--;
    }

    /// <summary>
    /// What calling <paramref name="host"/> costs now, in milliseconds: its decayed latency average (or, never
    /// measured, its announced p50 times its announced queue depth plus one) times its calls in flight plus one.
    /// </summary>
    public double Cost(ExpertHostInfo host)
    {
        lock (_peers)
        {
            _peers.TryGetValue(host.Host, out var state);
            double latency = state?.Measured == true
                ? state.Decayed(time.GetTimestamp(), time, options.LoadDecay)
                : Math.Max(MinAnnouncedMs, host.Load.LatencyP50Ms) * (Math.Max(0, host.Load.QueueDepth) + 1);
            return latency * ((state?.InFlight ?? 0) + 1);
        }
    }

    /// <summary>Whether <paramref name="host"/> is backed off now.</summary>
    public bool IsBackedOff(PeerId host)
    {
        lock (_peers) return _peers.TryGetValue(host, out var s) && s.BackedOffUntil > time.GetUtcNow();
    }

    /// <summary>Whether a call to <paramref name="host"/> could be served now: it is neither backed off nor flagged.</summary>
    public bool IsUsable(PeerId host) => !IsBackedOff(host) && !IsFlagged(host);

    /// <summary>The 95th percentile of recent forward answer times of <paramref name="host"/>, or null before any answer.</summary>
    public TimeSpan? P95(PeerId host)
    {
        lock (_peers)
        {
            if (!_peers.TryGetValue(host, out var s)) return null;
            return LatencyWindow.Percentile(s.Latencies.Sorted(), 0.95) is { } p95 ? TimeSpan.FromMilliseconds(p95) : null;
        }
    }

    /// <summary>The hosts of one uid in the order to try them; flagged hosts are left out.</summary>
    public IReadOnlyList<ExpertHostInfo> Order(IEnumerable<ExpertHostInfo> hosts) =>
        hosts.Where(h => !IsFlagged(h.Host)).Select(h => (Host: h, BackedOff: IsBackedOff(h.Host), Cost: Cost(h)))
            .OrderBy(h => h.BackedOff)
            .ThenBy(h => double.IsFinite(h.Cost) ? h.Cost : double.MaxValue)
            .ThenBy(h => h.Host.Host.ToString(), StringComparer.Ordinal)
            .Select(h => h.Host)
            .ToArray();

    private sealed class State
    {
        private double _averageMs;
        private long _observedAt;

        public LatencyWindow Latencies { get; } = new(Window);

        public int Failures { get; set; }

        public int InFlight { get; set; }

        public DateTimeOffset BackedOffUntil { get; set; } = DateTimeOffset.MinValue;

        /// <summary>Whether an answer was measured.</summary>
        public bool Measured { get; private set; }

        /// <summary>Takes in an answer's latency: a slower one than the average replaces it; a faster one weighs a quarter of the new average.</summary>
        public void Observe(double milliseconds, long now, TimeProvider time, TimeSpan decay)
        {
            double current = Measured ? Decayed(now, time, decay) : 0;
            _averageMs = milliseconds >= current ? milliseconds : FasterAnswerWeight * milliseconds + (1 - FasterAnswerWeight) * current;
            _observedAt = now;
            Measured = true;
        }

        /// <summary>Raises the average to <paramref name="milliseconds"/> if it is lower (a cut call took at least that long).</summary>
        public void AtLeast(double milliseconds, long now, TimeProvider time, TimeSpan decay)
        {
            if (!Measured || milliseconds <= Decayed(now, time, decay)) return;
            _averageMs = milliseconds;
            _observedAt = now;
        }

        /// <summary>The average, decayed toward zero for the time since the last answer (e^(−t / decay)).</summary>
        public double Decayed(long now, TimeProvider time, TimeSpan decay) =>
            _averageMs * Math.Exp(-time.GetElapsedTime(_observedAt, now).TotalSeconds / decay.TotalSeconds);
    }
}

/// <summary>A host an audit flagged: who, why, and when.</summary>
public sealed record FlaggedHost(PeerId Host, string Reason, DateTimeOffset At);
