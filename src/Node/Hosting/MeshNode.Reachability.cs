using Microsoft.Extensions.Logging;
using MoEMesh.Node.Reachability;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Relay;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Reachability: once joined, and every <see cref="ReachabilityOptions.CheckPeriod"/>, the node asks a few peers
/// to dial it back at its announced address. Unreachable (peers answered, none got through), it acts as a DHT
/// client, keeps reservations at the fastest reachable peers that relay, and announces its experts at the
/// relays' addresses; a lost relay is replaced and the new address announced at once. Reachable again, it
/// drops its relays and announces its own address. A reachable node relays for others (<c>Relay:Serve</c>).
/// </summary>
public sealed partial class MeshNode
{
    private readonly List<RelayReservation> _relays = [];
    private readonly SemaphoreSlim _reachabilityTurn = new(1, 1);
    private DialbackService? _dialback;
    private IReadOnlyList<string> _directAddresses = [];
    private bool _relaysClosed;
    private readonly Dictionary<PeerId, DateTimeOffset> _lostRelays = [];

    /// <summary>How long a lost relay is passed over.</summary>
    private static readonly TimeSpan RelayCoolDown = TimeSpan.FromMinutes(1);

    /// <summary>The last reachability check's outcome.</summary>
    public ReachabilityReport Reachability { get; private set; } = ReachabilityReport.NotChecked("");

    /// <summary>Relaying for others (refusing every reservation when <c>Relay:Serve</c> is off). Set once listening.</summary>
    public RelayService? Relaying { get; private set; }

    /// <summary>The relays this node is reached through now (empty while reachable).</summary>
    public IReadOnlyList<PeerEndpoint> Relays
    {
        get
        {
            lock (_relays) return _relays.Select(r => r.Relay).ToArray();
        }
    }

    /// <summary>The relay, built before the listener starts so its first connection can be relayed.</summary>
    private RelayService CreateRelay() => new(options.Relay, options.Protocol, time, loggers.CreateLogger<RelayService>())
    {
        CannotRelay = () => Reachability.State == Reach.Unreachable ? "it cannot be dialled itself" : null,
    };

    private void MapReachability(Protocol.Rpc.PeerRouter router)
    {
        _directAddresses = AnnounceAddresses;
        Reachability = ReachabilityReport.NotChecked(AnnounceAddresses[0]);
        _dialback = new DialbackService(identity, options.Protocol, options.Reachability, time);
        _dialback.Map(router);
        Relaying?.Map(router);
    }

    /// <summary>The check at start: one that fails (other than by the stop) is logged, and the node starts as if reachable.</summary>
    private async Task CheckReachabilityAtStartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await CheckReachabilityAsync(cancellationToken);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogReachabilityError(_logger, e);
        }
    }

    /// <summary>Asks peers to dial back, then acts on the answer (relays, DHT mode, announced addresses).</summary>
    private async Task CheckReachabilityAsync(CancellationToken cancellationToken)
    {
        if (options.ClientMode || !options.Reachability.Check) return;
        await _reachabilityTurn.WaitAsync(cancellationToken);
        try
        {
            var contacts = Dht.Contacts.Where(c => c.PeerId != PeerId).OrderBy(_ => Random.Shared.Next()).Select(c => c.Endpoint).ToArray();
            if (contacts.Length == 0) return; // the first node of a swarm: nobody to ask yet
            var direct = PeerAddress.Parse(_directAddresses[0]);
            var report = await _dialback!.CheckAsync(Transport, direct, direct.Port, contacts, options.Reachability.PeersAsked, cancellationToken);
            var before = Reachability.State;
            // Nobody answered (the same outage that took a relay, say): what was known stands until someone does.
            if (report.State == Reach.Unknown && before != Reach.Unknown) return;
            if (report is { State: Reach.Reachable, ReachedAt: { } reachedAt } && reachedAt != report.Address)
            {
                if (ReachabilityReport.Scope(PeerAddress.Parse(reachedAt).Host) < ReachabilityReport.Scope(direct.Host))
                {
                    // Peers on this node's own network reached it there; the wider address it announces stands.
                    report = report with { ReachedAt = report.Address };
                }
                else if (options.AnnounceAddresses.Count == 0)
                {
                    // Announced by default (the listen address, 127.0.0.1 for 0.0.0.0), reached elsewhere by peers that
                    // agree: a forwarded port behind a NAT. That is the address to announce.
                    LogReachedElsewhere(_logger, reachedAt, report.Address);
                    _directAddresses = [reachedAt];
                    Dht.SetAddress(PeerAddress.Parse(reachedAt));
                }
                else
                {
                    // Announced by hand, and not reached there: callers would dial the wrong address. Through a relay until fixed.
                    LogAnnouncedWrong(_logger, report.Address, reachedAt);
                    report = report with { State = Reach.Unreachable };
                }
            }
            Reachability = report;
            if (report.State == Reach.Reachable && before != Reach.Reachable) LogReachable(_logger, report.ReachedAt ?? report.Address, report.Results.Count(r => r.Reached), report.Results.Count);
            if (report.State == Reach.Unreachable && before != Reach.Unreachable)
                LogUnreachable(_logger, report.Address, report.Results.Count, string.Join("; ", report.Results.Select(r => $"{r.Peer}: {r.Problem}")), ListenAddress.Port);
            if (report.State == Reach.Unreachable) await KeepRelaysAsync(cancellationToken);
            else if (report.State == Reach.Reachable) await DropRelaysAsync(cancellationToken);
        }
        finally
        {
            _reachabilityTurn.Release();
        }
    }

    /// <summary>Unreachable: a DHT client, with <see cref="ReachabilityOptions.Relays"/> live reservations; announces when the addresses change.</summary>
    private async Task KeepRelaysAsync(CancellationToken cancellationToken)
    {
        Dht.SetClientMode(true);
        await DropLostRelaysAsync();
        int wanted = options.Reachability.Relays - Relays.Count;
        if (wanted > 0)
        {
            var current = Relays.Select(r => r.PeerId).ToHashSet();
            var now = time.GetUtcNow();
            HashSet<PeerId> coolingDown;
            lock (_relays) coolingDown = _lostRelays.Where(l => l.Value > now).Select(l => l.Key).ToHashSet();
            var candidates = Dht.Contacts.Where(c => c.PeerId != PeerId && !current.Contains(c.PeerId) && !coolingDown.Contains(c.PeerId)).OrderBy(_ => Random.Shared.Next())
                .Take(options.Reachability.RelayCandidates).ToArray();
            var timed = await Task.WhenAll(candidates.Select(async c => (Contact: c, Rtt: await Dht.RoundTripAsync(c.Endpoint, cancellationToken))));
            foreach (var (contact, rtt) in timed.Where(t => t.Rtt is not null).OrderBy(t => t.Rtt))
            {
                if (wanted == 0) break;
                RelayReservation reservation;
                try
                {
                    reservation = await RelayReservation.ReserveAsync(contact.Endpoint, _server!, Transport, options.Protocol, time, _logger, cancellationToken);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    // Whatever a candidate answers, it only costs it its turn.
                    LogRelayRefused(_logger, contact.Endpoint.ToString(), e.Message);
                    continue;
                }
                bool closed;
                lock (_relays)
                {
                    closed = _relaysClosed;
                    if (!closed) _relays.Add(reservation);
                }
                if (closed)
                {
                    await reservation.DisposeAsync();
                    return;
                }
                wanted--;
                LogRelayTaken(_logger, contact.Endpoint.ToString(), rtt!.Value.TotalMilliseconds);
            }
            if (Relays.Count == 0) LogNoRelay(_logger, timed.Length);
        }
        string[] relayed;
        lock (_relays) relayed = _relays.Select(r => r.Address.ToString()).ToArray();
        await AnnounceAtAsync(relayed.Length > 0 ? relayed : _directAddresses, cancellationToken);
    }

    /// <summary>Forgets the relays that stopped answering.</summary>
    private async Task DropLostRelaysAsync()
    {
        List<RelayReservation> lost;
        lock (_relays)
        {
            lost = _relays.Where(r => r.Lost.IsCompleted).ToList();
            _relays.RemoveAll(lost.Contains);
            // A relay that was lost is not taken again for a while (one that fails at once would otherwise be taken over and over).
            var now = time.GetUtcNow();
            foreach (var over in _lostRelays.Where(l => l.Value <= now).Select(l => l.Key).ToArray()) _lostRelays.Remove(over);
            foreach (var r in lost)
                if (r.Relay.PeerId is { } id) _lostRelays[id] = now + RelayCoolDown;
        }
        foreach (var r in lost) await r.DisposeAsync();
    }

    /// <summary>Reachable: a full DHT member again, announced at its own address.</summary>
    private async Task DropRelaysAsync(CancellationToken cancellationToken)
    {
        await GiveUpRelaysAsync(forGood: false);
        Dht.SetClientMode(false);
        await AnnounceAtAsync(_directAddresses, cancellationToken);
    }

    /// <summary>Announces at once when the addresses change (and the node has announced before).</summary>
    private async Task AnnounceAtAsync(IReadOnlyList<string> addresses, CancellationToken cancellationToken)
    {
        if (addresses.SequenceEqual(AnnounceAddresses)) return;
        AnnounceAddresses = addresses;
        LogAnnouncing(_logger, string.Join(", ", addresses));
        if (Ready) await AnnounceAsync(cancellationToken);
    }

    /// <summary>
    /// Checks again every CheckPeriod; while unreachable, replaces a lost relay as soon as it is noticed
    /// (and at least every UpdatePeriod tries again to have enough).
    /// </summary>
    private async Task ReachabilityLoopAsync(CancellationToken stopping)
    {
        if (options.ClientMode || !options.Reachability.Check) return;
        var nextCheck = time.GetUtcNow() + NextCheckIn();
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                // A relay lost while the state is not Unreachable is forgotten here too, or its finished Lost would wake this loop at once, forever.
                if (Reachability.State != Reach.Unreachable) await DropLostRelaysAsync();
                Task[] lost;
                lock (_relays) lost = _relays.Select(r => (Task)r.Lost).ToArray();
                var wait = TimeSpan.FromTicks(Math.Max(0, Math.Min((nextCheck - time.GetUtcNow()).Ticks, options.UpdatePeriod.Ticks)));
                await Task.WhenAny([Task.Delay(wait, time, stopping), .. lost]);
                stopping.ThrowIfCancellationRequested();
                // Not known yet (the first node of a swarm had nobody to ask): ask as soon as there is someone.
                if (time.GetUtcNow() >= nextCheck || (Reachability.State == Reach.Unknown && Dht.RoutingTableSize > 0))
                {
                    await CheckReachabilityAsync(stopping);
                    nextCheck = time.GetUtcNow() + NextCheckIn();
                }
                else if (Reachability.State == Reach.Unreachable)
                {
                    await _reachabilityTurn.WaitAsync(stopping);
                    try
                    {
                        await KeepRelaysAsync(stopping);
                    }
                    finally
                    {
                        _reachabilityTurn.Release();
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                LogReachabilityError(_logger, e);
            }
        }
    }

    /// <summary>
    /// When to check again: after CheckPeriod, or after an UpdatePeriod when the last check could not settle it (it
    /// found the node unreachable, yet some peer's echo arrived: at an address too few peers confirmed, say).
    /// </summary>
    private TimeSpan NextCheckIn() =>
        Reachability.State == Reach.Unreachable && Reachability.Results.Any(r => r.Reached) ? options.UpdatePeriod : options.Reachability.CheckPeriod;

    /// <summary>On stop: gives every reservation up; none is taken after this.</summary>
    private Task ReleaseRelaysAsync() => GiveUpRelaysAsync(forGood: true);

    /// <summary>Gives every reservation up; <paramref name="forGood"/> (on stop), none is taken after this.</summary>
    private async Task GiveUpRelaysAsync(bool forGood)
    {
        RelayReservation[] all;
        lock (_relays)
        {
            _relaysClosed |= forGood;
            all = [.. _relays];
            _relays.Clear();
        }
        foreach (var r in all) await r.DisposeAsync();
    }

    [LoggerMessage(EventId = 570, Level = LogLevel.Information, Message = "Reachable at {Address}: {Reached} of {Asked} peers dialled back")]
    private static partial void LogReachable(ILogger logger, string address, int reached, int asked);

    [LoggerMessage(EventId = 571, Level = LogLevel.Warning, Message = "NOT reachable at {Address}: none of {Asked} peers could dial back ({Problems}). This node now takes calls through a relay and holds no DHT records for others; to be reached directly, forward TCP port {Port} to this machine on your router and open it in the firewall (`moemesh doctor` checks)")]
    private static partial void LogUnreachable(ILogger logger, string address, int asked, string problems, int port);

    [LoggerMessage(EventId = 572, Level = LogLevel.Information, Message = "Relay {Relay} keeps a place for this node (round trip {RttMs:F1} ms)")]
    private static partial void LogRelayTaken(ILogger logger, string relay, double rttMs);

    [LoggerMessage(EventId = 573, Level = LogLevel.Information, Message = "Relay {Relay} refused: {Reason}")]
    private static partial void LogRelayRefused(ILogger logger, string relay, string reason);

    [LoggerMessage(EventId = 574, Level = LogLevel.Error, Message = "Unreachable and no relay accepted this node ({Candidates} peers answered a ping): nobody can call its experts; trying again within an update period")]
    private static partial void LogNoRelay(ILogger logger, int candidates);

    [LoggerMessage(EventId = 575, Level = LogLevel.Information, Message = "Announcing at {Addresses}")]
    private static partial void LogAnnouncing(ILogger logger, string addresses);

    [LoggerMessage(EventId = 577, Level = LogLevel.Information, Message = "Peers reach this node at {ReachedAt}, not at {Announced} (its default address): announcing {ReachedAt}")]
    private static partial void LogReachedElsewhere(ILogger logger, string reachedAt, string announced);

    [LoggerMessage(EventId = 578, Level = LogLevel.Warning, Message = "Peers cannot reach this node at {Announced}, the address it is told to announce, but they do at {ReachedAt}: announce that (--announce {ReachedAt}); until then calls come through a relay")]
    private static partial void LogAnnouncedWrong(ILogger logger, string announced, string reachedAt);

    [LoggerMessage(EventId = 576, Level = LogLevel.Error, Message = "Checking reachability failed")]
    private static partial void LogReachabilityError(ILogger logger, Exception exception);
}
