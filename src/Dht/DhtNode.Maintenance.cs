using Microsoft.Extensions.Logging;
using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Lookup;
using MoEMesh.Dht.Node;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht;

/// <summary>
/// Joining and staying joined: bootstrap from the initial peers with retries and back-off; then every
/// MaintenanceInterval purge expired records and old bans, go back to the initial peers when the table
/// has emptied, try again a few contacts lost lately (so the two sides of a healed partition find each
/// other), refresh buckets that saw no lookup for RefreshPeriod (Hivemind never refreshes), and republish.
/// </summary>
public sealed partial class DhtNode
{
    /// <summary>
    /// Joins the swarm through <paramref name="initialPeers"/>: pings them (in rounds, with back-off
    /// between rounds), adds those that answer, then looks up this node's own id to fill the table.
    /// With no initial peers this node starts a new swarm.
    /// </summary>
    /// <exception cref="DhtBootstrapException">No initial peer answered in any round; the message names each and why.</exception>
    public async Task BootstrapAsync(IReadOnlyList<PeerEndpoint> initialPeers, CancellationToken cancellationToken)
    {
        _initialPeers = initialPeers.ToArray();
        if (_initialPeers.Count == 0) return;
        var problems = new Dictionary<PeerEndpoint, string>();
        for (int attempt = 1; ; attempt++)
        {
            if (await TryJoinAsync(problems, cancellationToken)) return;
            if (attempt >= Options.BootstrapAttempts) break;
            var wait = TimeSpan.FromTicks(Options.BootstrapBackoff.Ticks << Math.Min(attempt - 1, 20));
            LogBootstrapRetry(_logger, attempt, wait.TotalSeconds);
            await Task.Delay(wait, Time, cancellationToken);
        }
        throw new DhtBootstrapException(
            $"Could not join the DHT: {(_initialPeers.Count == 1 ? "the initial peer did not answer" : $"none of the {_initialPeers.Count} initial peers answered")} "
            + $"after {(Options.BootstrapAttempts == 1 ? "1 attempt" : $"{Options.BootstrapAttempts} attempts")}. "
            + string.Join("; ", _initialPeers.Select(p => $"{p}: {problems.GetValueOrDefault(p, "no answer")}")));
    }

    /// <summary>One round of pings to the initial peers; on any answer, a lookup of our own id.</summary>
    private async Task<bool> TryJoinAsync(Dictionary<PeerEndpoint, string> problems, CancellationToken cancellationToken)
    {
        var deadline = Time.GetUtcNow() + Options.RpcTimeout;
        var pings = await Task.WhenAll(_initialPeers.Select(async peer => (Peer: peer, Result: await _rpc.PingAsync(Sender, peer, deadline, cancellationToken))));
        bool joined = false;
        foreach (var (peer, result) in pings)
        {
            if (!result.IsOk) problems[peer] = $"{result.Outcome}: {result.Error}";
            else if (result.Value == PeerId) problems[peer] = "the peer there has this node's own PeerId: it is this node, or another node runs with the same key file (give each node its own --key-file)";
            else if (peer.PeerId is { } expected && expected != result.Value) problems[peer] = $"it answered as {result.Value}, not the expected {expected}";
            else
            {
                Seen(new DhtContact(result.Value, peer.Address));
                joined = true;
            }
        }
        if (!joined) return false;
        await LookupAsync([new FindQuery(Id, null)], LookupMode.FindNodes, Time.GetUtcNow() + Options.OperationTimeout, "bootstrap", cancellationToken);
        LogJoined(_logger, RoutingTableSize);
        return true;
    }

    private async Task MaintainAsync(CancellationToken stopping)
    {
        try
        {
            while (true)
            {
                await Task.Delay(Options.MaintenanceInterval, Time, stopping);
                try
                {
                    await MaintainOnceAsync(stopping);
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    LogMaintenanceFailed(_logger, e);
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
        }
    }

    /// <summary>One maintenance pass (the loop calls this every MaintenanceInterval).</summary>
    internal async Task MaintainOnceAsync(CancellationToken cancellationToken)
    {
        var now = Time.GetUtcNow();
        List<NodeId> stale;
        bool empty, republish;
        lock (_gate)
        {
            _store.Purge(now);
            _bans.Purge(now);
            empty = _table.Count == 0;
            stale = empty ? [] : _table.StaleBucketTargets(now, Options.RefreshPeriod, _random);
            republish = Options.RepublishPeriod > TimeSpan.Zero && !IsClient && now >= _nextRepublish && !_republishing;
            if (republish)
            {
                _nextRepublish = RepublishAfter(now);
                _republishing = true;
            }
        }
        // Republishing many keys takes a while: it runs beside maintenance rather than holding up rejoins and refreshes.
        if (republish) _background.Run("republish", RepublishAsync);
        if (empty && _initialPeers.Count > 0)
        {
            LogRejoining(_logger, _initialPeers.Count);
            if (await TryJoinAsync([], cancellationToken)) return;
        }
        List<DhtContact> lost;
        lock (_gate) lost = _lost.Next(Time.GetUtcNow(), Options.Alpha);
        if (lost.Count > 0) await RetryLostAsync(lost, cancellationToken);
        if (stale.Count > 0)
            await LookupAsync(stale.Select(t => new FindQuery(t, null)).ToArray(), LookupMode.FindNodes, now + Options.OperationTimeout, "refresh", cancellationToken);
    }

    /// <summary>
    /// Pings contacts lost lately; one that answers as itself is back (table, store-on-join). A lookup of
    /// this node's own id through it follows when the table was empty, so a node cut off from everyone
    /// rejoins through whoever it finds first.
    /// </summary>
    private async Task RetryLostAsync(List<DhtContact> lost, CancellationToken cancellationToken)
    {
        bool wasEmpty = RoutingTableSize == 0;
        var deadline = Time.GetUtcNow() + Options.RpcTimeout;
        var answers = await Task.WhenAll(lost.Select(async c => (Contact: c, Result: await _rpc.PingAsync(Sender, c.Endpoint, deadline, cancellationToken))));
        var back = answers.Where(a => a.Result.IsOk && a.Result.Value == a.Contact.PeerId).Select(a => a.Contact).ToList();
        foreach (var contact in back) Seen(contact);
        if (back.Count == 0) return;
        LogFoundAgain(_logger, back.Count);
        if (wasEmpty)
            await LookupAsync([new FindQuery(Id, null)], LookupMode.FindNodes, Time.GetUtcNow() + Options.OperationTimeout, "bootstrap", cancellationToken);
    }

    /// <summary>
    /// Stores the records no holder has republished for a RepublishPeriod on the nodes now nearest their
    /// keys, MaxKeysPerRpc keys per store. Republishes come 0.9 to 1.1 periods apart, so the holders of a
    /// key drift apart and one of them usually republishes it for all. One runs at a time.
    /// </summary>
    private async Task RepublishAsync()
    {
        try
        {
            List<DhtRecord> due;
            lock (_gate) due = _store.Unrenewed(Time.GetUtcNow(), Options.RepublishPeriod);
            if (due.Count == 0) return;
            int placed = 0;
            foreach (var chunk in due.GroupBy(r => r.Key, StringComparer.Ordinal).Chunk(Options.MaxKeysPerRpc))
            {
                var results = await StoreManyAsync(chunk.SelectMany(g => g).ToArray(), _stopping.Token);
                placed += results.Count(r => r.Replicas > 0);
            }
            _metrics.Republished(placed);
            LogRepublished(_logger, due.Count, placed);
        }
        finally
        {
            lock (_gate) _republishing = false;
        }
    }

    /// <summary>When the next republish is due: 0.9 to 1.1 periods after <paramref name="now"/>.</summary>
    private DateTimeOffset RepublishAfter(DateTimeOffset now) => now + Options.RepublishPeriod * (0.9 + 0.2 * _random.NextDouble());

    [LoggerMessage(EventId = 410, Level = LogLevel.Information, Message = "Joined the DHT; routing table holds {Contacts} contacts")]
    private static partial void LogJoined(ILogger logger, int contacts);

    [LoggerMessage(EventId = 411, Level = LogLevel.Warning, Message = "No initial DHT peer answered (attempt {Attempt}); retrying in {WaitSeconds} s")]
    private static partial void LogBootstrapRetry(ILogger logger, int attempt, double waitSeconds);

    [LoggerMessage(EventId = 412, Level = LogLevel.Warning, Message = "The DHT routing table is empty; rejoining through {Count} initial peers")]
    private static partial void LogRejoining(ILogger logger, int count);

    [LoggerMessage(EventId = 415, Level = LogLevel.Information, Message = "{Count} lost DHT contacts answer again")]
    private static partial void LogFoundAgain(ILogger logger, int count);

    [LoggerMessage(EventId = 414, Level = LogLevel.Debug, Message = "Republished {Records} records; {Placed} reached at least one node")]
    private static partial void LogRepublished(ILogger logger, int records, int placed);

    [LoggerMessage(EventId = 413, Level = LogLevel.Error, Message = "DHT maintenance failed")]
    private static partial void LogMaintenanceFailed(ILogger logger, Exception exception);
}
