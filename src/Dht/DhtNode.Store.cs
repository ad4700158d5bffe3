using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Lookup;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;

namespace MoEMesh.Dht;

/// <summary>
/// STORE: one node lookup for all keys, then each key's records go to its <see cref="DhtOptions.NumReplicas"/>
/// nearest nodes (this node included when it is among them and not in client mode). A node that fails or
/// is full is replaced by the next-nearest; records bound for the same node travel in one RPC.
/// </summary>
public sealed partial class DhtNode
{
    /// <inheritdoc />
    public async Task<DhtStoreResult> StoreAsync(DhtRecord record, CancellationToken cancellationToken) =>
        (await StoreManyAsync([record], cancellationToken))[0];

    /// <inheritdoc />
    public async Task<IReadOnlyList<DhtStoreResult>> StoreManyAsync(IReadOnlyList<DhtRecord> records, CancellationToken cancellationToken)
    {
        var now = Time.GetUtcNow();
        var progress = records.Select(r => new RecordProgress(r, _validator.Check(r, now))).ToArray();
        var plans = progress.Where(p => p.Problems.Count == 0).GroupBy(p => p.Record.Key, StringComparer.Ordinal)
            .Select(g => new KeyPlan(g.Key, g.ToList())).ToArray();
        if (plans.Length > 0)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stopping.Token);
            var deadline = now + Options.OperationTimeout;
            // The lookup leaves at least one RPC timeout for placing the replicas.
            var found = await LookupAsync(plans.Select(p => new FindQuery(p.KeyId, null)).ToArray(), LookupMode.FindNodes, deadline - Options.RpcTimeout, "store", linked.Token);
            for (int i = 0; i < plans.Length; i++) plans[i].SetCandidates(found[i].Nearest, Sender.AsContact);
            await PlaceReplicasAsync(plans, deadline, linked.Token);
        }
        return progress.Select(p => p.ToResult(Options.NumReplicas)).ToArray();
    }

    private async Task PlaceReplicasAsync(KeyPlan[] plans, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        while (Time.GetUtcNow() < deadline)
        {
            var sends = new Dictionary<DhtContact, List<KeyPlan>>();
            foreach (var plan in plans)
            {
                while (plan.Accepted + plan.InFlight < Options.NumReplicas && plan.TryNext(out var node))
                {
                    if (node.Id == Id) StoreLocally(plan);
                    else
                    {
                        if (!sends.TryGetValue(node, out var list)) sends[node] = list = [];
                        list.Add(plan);
                        plan.InFlight++;
                    }
                }
            }
            if (sends.Count == 0) return;
            await Task.WhenAll(sends.Select(s => SendAsync(s.Key, s.Value, deadline, cancellationToken)));
        }
    }

    private void StoreLocally(KeyPlan plan)
    {
        var now = Time.GetUtcNow();
        bool full = false;
        lock (_gate)
        {
            foreach (var p in plan.Records)
                full |= p.Take(PeerId.ToString(), _store.Put(p.Record, RecordOrigin.Of(PeerId, null), now));
        }
        if (!full) plan.Accepted++;
    }

    /// <summary>Stores the records of <paramref name="plans"/> on <paramref name="node"/>, in chunks of MaxKeysPerRpc.</summary>
    private async Task SendAsync(DhtContact node, List<KeyPlan> plans, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var items = plans.SelectMany(plan => plan.Records.Select(p => (Plan: plan, Progress: p))).ToArray();
        var refused = new HashSet<KeyPlan>();
        foreach (var chunk in items.Chunk(Options.MaxKeysPerRpc))
        {
            var result = await _rpc.StoreAsync(Sender, node, chunk.Select(c => c.Progress.Record).ToArray(), Earliest(deadline), cancellationToken);
            Observe(node, result.Outcome, result.Error);
            for (int i = 0; i < chunk.Length; i++)
            {
                var (plan, p) = chunk[i];
                bool ok = result.IsOk && result.Value!.Count == chunk.Length;
                var outcome = ok ? result.Value![i] : new StoreOutcome(StoreStatus.Rejected, $"{result.Outcome}: {result.Error}");
                // A failed call is recorded as a problem too, so the result says why the replica is missing.
                bool full = p.Take(node.PeerId.ToString(), outcome);
                if (!ok || full) refused.Add(plan);
            }
        }
        foreach (var plan in plans)
        {
            plan.InFlight--;
            if (!refused.Contains(plan)) plan.Accepted++;
        }
    }

    /// <summary>One key's replica placement: candidates nearest first, how many accepted, how many asked.</summary>
    private sealed class KeyPlan(string key, List<RecordProgress> records)
    {
        private List<DhtContact> _candidates = [];
        private int _next;

        public NodeId KeyId { get; } = NodeId.ForKey(key);

        public List<RecordProgress> Records { get; } = records;

        public int Accepted { get; set; }

        public int InFlight { get; set; }

        public void SetCandidates(IReadOnlyList<DhtContact> nearest, DhtContact? self)
        {
            _candidates = [.. nearest];
            if (self is not null) _candidates.Add(self);
            _candidates.Sort((a, b) => a.Id.DistanceTo(KeyId).CompareTo(b.Id.DistanceTo(KeyId)));
            foreach (var r in Records) r.CandidatesKnown = _candidates.Count;
        }

        public bool TryNext(out DhtContact node)
        {
            node = _next < _candidates.Count ? _candidates[_next++] : null!;
            return node is not null;
        }
    }

    /// <summary>One record's replicas and the reasons nodes gave for not holding it.</summary>
    private sealed class RecordProgress(DhtRecord record, string? invalid)
    {
        public DhtRecord Record { get; } = record;

        public int Replicas { get; private set; }

        public int CandidatesKnown { get; set; }

        public List<string> Problems { get; } = invalid is null ? [] : [$"invalid record: {invalid}"];

        /// <summary>Counts an outcome from <paramref name="node"/>; true when the node is full (try another).</summary>
        public bool Take(string node, StoreOutcome outcome)
        {
            if (outcome.Status == StoreStatus.Stored)
            {
                Replicas++;
                return false;
            }
            if (Problems.Count < 5) Problems.Add($"{node}: {outcome}");
            return outcome.Status == StoreStatus.Full;
        }

        public DhtStoreResult ToResult(int wanted)
        {
            if (Replicas >= wanted) return new DhtStoreResult(Record, Replicas, null);
            string why = Problems.Count > 0 ? string.Join("; ", Problems) : (CandidatesKnown == 1 ? "only 1 node is known near the key" : $"only {CandidatesKnown} nodes are known near the key");
            return new DhtStoreResult(Record, Replicas, $"stored on {Replicas} of the {wanted} nodes wanted: {why}");
        }
    }
}
