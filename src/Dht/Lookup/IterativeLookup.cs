using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Rpc;

namespace MoEMesh.Dht.Lookup;

/// <summary>
/// Kademlia's iterative lookup, for many keys at once. Each key keeps up to alpha find requests in
/// flight to the nearest fresh candidates of its window (the k nearest not known to have failed); a
/// request to a node carries every key for which that node is a fresh window candidate, so keys that
/// share neighbourhoods share RPCs. A request unanswered for SlowRpcThreshold frees its slot and its node
/// is presumed failed (the window moves on to the next candidate), so a dead node costs the lookup a short
/// wait, not a whole RPC timeout; a late answer still counts if the lookup is still running.
/// A key finishes when its window holds no fresh candidate and no unanswered request, or (first-value
/// mode) at its first valid value. The lookup returns as soon as every key has finished; requests still
/// out are handed to the host. Banned peers are skipped. Nothing starts after the deadline. An answer's
/// first k contacts are read; a node whose contacts mostly fail stops being believed (<see cref="LookupKeyState"/>).
/// A node whose answer left a key's records out (its reply was full) is asked again for that key alone.
/// </summary>
internal sealed class IterativeLookup(ILookupHost host, LookupMode mode)
{
    /// <summary>Runs the lookup; one result per query, in order.</summary>
    public async Task<LookupResult[]> RunAsync(IReadOnlyList<FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        int k = host.Options.BucketSize;
        var keys = queries.Select(q => new LookupKeyState(q, k, host.Seeds(q.Target), host.Options.MaxBytesPerKey)).ToArray();
        var pending = new List<Exchange>();
        try
        {
            while (true)
            {
                var now = host.Time.GetUtcNow();
                if (now < deadline) Launch(keys, pending, deadline, cancellationToken);
                foreach (var key in keys)
                    if (!key.Done && (now >= deadline || (key.NextFresh() is null && !key.AwaitsWindow() && !key.AwaitsVerdict()))) key.Done = true;
                if (pending.Count == 0 || keys.All(key => key.Done)) break;
                var finished = await NextEventAsync(pending, cancellationToken);
                if (finished is null) continue;
                pending.Remove(finished);
                Process(finished, await finished.Task);
            }
        }
        finally
        {
            foreach (var straggler in pending) host.Abandon(straggler.Task);
        }
        return keys.Select(key => key.ToResult(mode)).ToArray();
    }

    /// <summary>Waits for the next answer, or until the oldest request still holding slots turns slow (returns null then).</summary>
    private async Task<Exchange?> NextEventAsync(List<Exchange> pending, CancellationToken cancellationToken)
    {
        var slowAt = pending.Where(e => !e.Slow).Select(e => e.Started + host.Options.SlowRpcThreshold).DefaultIfEmpty(DateTimeOffset.MaxValue).Min();
        var answers = Task.WhenAny(pending.Select(e => e.Task));
        if (slowAt == DateTimeOffset.MaxValue) return Find(pending, await answers);
        // A timer completing a plain TaskCompletionSource, not Task.Delay: Task.Delay forces its continuations
        // asynchronous, which sends WhenAny's completion through the thread pool and out of a simulation.
        var turnedSlow = new TaskCompletionSource();
        var wait = slowAt - host.Time.GetUtcNow();
        using (host.Time.CreateTimer(static s => ((TaskCompletionSource)s!).TrySetResult(), turnedSlow, wait > TimeSpan.Zero ? wait : TimeSpan.Zero, Timeout.InfiniteTimeSpan))
        using (cancellationToken.Register(static s => ((TaskCompletionSource)s!).TrySetResult(), turnedSlow))
        {
            var first = await Task.WhenAny(answers, turnedSlow.Task);
            if (first == answers) return Find(pending, await answers);
        }
        cancellationToken.ThrowIfCancellationRequested();
        var now = host.Time.GetUtcNow();
        foreach (var e in pending)
        {
            if (e.Slow || e.Started + host.Options.SlowRpcThreshold > now) continue;
            e.Slow = true;
            foreach (var key in e.Batch)
            {
                key.InFlight--;
                key.MarkSlow(key[e.Target.Id]);
            }
        }
        return null;
    }

    private static Exchange Find(List<Exchange> pending, Task finished) => pending.First(e => e.Task == finished);

    private void Launch(LookupKeyState[] keys, List<Exchange> pending, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        int alpha = host.Options.Alpha, maxKeys = host.Options.MaxKeysPerRpc;
        bool launched;
        do
        {
            launched = false;
            foreach (var key in keys)
            {
                if (key.Done || key.InFlight >= alpha || key.NextFresh() is not { } next) continue;
                var target = next.Contact;
                var batch = new List<LookupKeyState> { key };
                foreach (var other in keys)
                {
                    // A node asked again for records it left out is asked for that key alone, so they fit.
                    if (batch.Count >= maxKeys || next.AskedAgain > 0) break;
                    if (other != key && !other.Done && other.InFlight < alpha && other.IsFreshInWindow(target.Id) && other[target.Id].AskedAgain == 0) batch.Add(other);
                }
                foreach (var member in batch) member.MarkAsked(member[target.Id]);
                var task = host.FindAsync(target, batch.Select(b => b.Query).ToArray(), deadline, cancellationToken);
                pending.Add(new Exchange(target, batch, task, host.Time.GetUtcNow()));
                launched = true;
            }
        }
        while (launched);
    }

    private void Process(Exchange exchange, DhtRpcResult<IReadOnlyList<FindAnswer>> result)
    {
        var (target, batch, _, _) = exchange;
        bool answered = result.IsOk && result.Value!.Count == batch.Count;
        var now = host.Time.GetUtcNow();
        for (int i = 0; i < batch.Count; i++)
        {
            var key = batch[i];
            if (!exchange.Slow) key.InFlight--;
            var candidate = key[target.Id];
            if (!answered)
            {
                key.MarkFailed(candidate);
                continue;
            }
            key.MarkAnswered(candidate);
            if (key.Done) continue;
            var answer = result.Value![i];
            // An answer names at most k contacts; the rest of a longer list is not read.
            foreach (var contact in answer.Nearest.Take(host.Options.BucketSize))
                if (contact.Id != host.Self) key.Offer(contact, candidate.Hop + 1, failed: host.IsBanned(contact.Id), namedBy: target.Id);
            foreach (var record in answer.Records)
                if (record.Key == key.Query.Key && host.IsValid(record, now)) key.AddRecord(record, candidate.Hop);
            if (mode == LookupMode.GetFirst && !key.Merger.IsEmpty) key.Done = true;
            else if (answer.RecordsLeftOut && key.Query.Key is not null) key.AskAgain(candidate);
        }
    }

    /// <summary>One find RPC in flight: to whom, for which keys, since when, and whether it has turned slow.</summary>
    private sealed record Exchange(DhtContact Target, List<LookupKeyState> Batch, Task<DhtRpcResult<IReadOnlyList<FindAnswer>>> Task, DateTimeOffset Started)
    {
        public bool Slow { get; set; }
    }
}
