using MoEMesh.Dht.Lookup;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;

namespace MoEMesh.Dht;

/// <summary>
/// GET. Concurrent gets of one key (with the same <c>latest</c>) share one search. A search runs under
/// the node's own lifetime and <see cref="DhtOptions.OperationTimeout"/>, so one caller giving up does
/// not cancel it for the others; each caller waits with its own token.
/// </summary>
public sealed partial class DhtNode
{
    /// <inheritdoc />
    public async Task<DhtValue?> GetAsync(string key, bool latest, CancellationToken cancellationToken) =>
        (await GetManyAsync([key], latest, cancellationToken))[key];

    /// <inheritdoc />
    public async Task<IReadOnlyDictionary<string, DhtValue?>> GetManyAsync(IReadOnlyCollection<string> keys, bool latest, CancellationToken cancellationToken)
    {
        var distinct = keys.Distinct(StringComparer.Ordinal).ToArray();
        foreach (var key in distinct)
            if (string.IsNullOrEmpty(key) || key.Length > RecordValidator.MaxKeyLength)
                throw new ArgumentException($"DHT keys must have 1 to {RecordValidator.MaxKeyLength} characters; got '{key}'.", nameof(keys));
        var waits = new Dictionary<string, Task<DhtValue?>>(StringComparer.Ordinal);
        var toSearch = new List<(string Key, TaskCompletionSource<DhtValue?> Done)>();
        var now = Time.GetUtcNow();
        lock (_gate)
        {
            foreach (var key in distinct)
            {
                var local = _store.Get(key, now);
                if (!latest && local.Count > 0)
                    waits[key] = Task.FromResult<DhtValue?>(Merge(key, local, null));
                else if (_searches.TryGetValue((key, latest), out var running))
                    waits[key] = running;
                else
                {
                    // Completed outside the lock, so continuations may run inline; forcing them asynchronous
                    // would send them through the thread pool and break a simulation's single thread.
                    var done = new TaskCompletionSource<DhtValue?>();
                    _searches[(key, latest)] = done.Task;
                    waits[key] = done.Task;
                    toSearch.Add((key, done));
                }
            }
        }
        if (toSearch.Count > 0) _background.Run("get", () => SearchAsync(toSearch, latest));
        await Task.WhenAll(waits.Values).WaitAsync(cancellationToken);
        return waits.ToDictionary(w => w.Key, w => w.Value.Result, StringComparer.Ordinal);
    }

    private async Task SearchAsync(List<(string Key, TaskCompletionSource<DhtValue?> Done)> searches, bool latest)
    {
        try
        {
            var deadline = Time.GetUtcNow() + Options.OperationTimeout;
            var queries = searches.Select(s => FindQuery.ForKey(s.Key)).ToArray();
            var results = await LookupAsync(queries, latest ? LookupMode.GetLatest : LookupMode.GetFirst, deadline, "get", _stopping.Token);
            var now = Time.GetUtcNow();
            for (int i = 0; i < searches.Count; i++)
            {
                IReadOnlyList<DhtRecord> local;
                lock (_gate) local = _store.Get(searches[i].Key, now);
                searches[i].Done.TrySetResult(Merge(searches[i].Key, local, results[i].Value));
            }
        }
        catch (Exception e)
        {
            foreach (var (_, done) in searches)
                if (e is OperationCanceledException) done.TrySetCanceled();
                else done.TrySetException(e);
        }
        finally
        {
            lock (_gate)
                foreach (var (key, _) in searches) _searches.Remove((key, latest));
        }
    }

    private static DhtValue? Merge(string key, IReadOnlyList<DhtRecord> local, DhtValue? found)
    {
        var merger = new RecordMerger(key);
        foreach (var r in local) merger.Add(r);
        if (found is not null)
            foreach (var r in found.Records) merger.Add(r);
        return merger.ToValue();
    }
}
