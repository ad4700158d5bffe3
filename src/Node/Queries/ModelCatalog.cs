using Microsoft.Extensions.Logging;
using MoEMesh.Node.Models;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Queries;

/// <summary>
/// The models this node has loaded to answer queries, by name. A model the node holds is loaded from its
/// file (and again when a newer version is installed); one it does not hold is fetched from the holders of
/// the publisher most holders attest (checked) and kept in memory only; after FetchedModelTtl the DHT is
/// asked for a newer version from that same publisher, and the copy in memory keeps serving when there is
/// none or it cannot be fetched. One load per name runs at a time (others asking for it wait for it),
/// different names load side by side. At most MaxLoadedModels stay loaded; the least recently used goes first.
/// </summary>
internal sealed partial class ModelCatalog(ModelStore store, ModelFetcher fetcher, ModelServingOptions options, TimeProvider time,
    Func<LoadedModelFile, MoEModel> build, ILogger logger) : IAsyncDisposable
{
    private readonly Dictionary<string, Entry> _loaded = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Task<ServedModel>> _loading = new(StringComparer.Ordinal);

    /// <summary>The models loaded now.</summary>
    public IReadOnlyList<ServedModel> Loaded
    {
        get
        {
            lock (_loaded) return _loaded.Values.Select(e => e.Model).ToArray();
        }
    }

    /// <summary>The model called <paramref name="name"/>, loaded or fetched as needed.</summary>
    /// <exception cref="ModelNotFoundException">No peer holds it.</exception>
    /// <exception cref="ModelFetchFailedException">Holders exist but none gave a good copy.</exception>
    public Task<ServedModel> GetAsync(string name, CancellationToken cancellationToken)
    {
        Task<ServedModel> load;
        lock (_loaded)
        {
            if (Fresh(name) is { } ready) return Task.FromResult(ready);
            if (!_loading.TryGetValue(name, out load!))
            {
                // The load is not tied to the first caller's cancellation: the others share it.
                _loading[name] = load = LoadAsync(name);
            }
        }
        return load.WaitAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        Entry[] all;
        lock (_loaded)
        {
            all = _loaded.Values.ToArray();
            _loaded.Clear();
        }
        foreach (var e in all) await e.Model.DisposeAsync();
    }

    private async Task<ServedModel> LoadAsync(string name)
    {
        await Task.Yield();
        try
        {
            var held = store.Find(name);
            Entry entry;
            if (held is not null)
            {
                entry = new Entry(Serve(ModelFile.Load(held.Path), held.Publication), true, time.GetUtcNow());
            }
            else
            {
                Entry? stale;
                lock (_loaded) stale = _loaded.GetValueOrDefault(name);
                FetchedModel fetched;
                try
                {
                    fetched = await fetcher.FetchAsync(name, store.IncomingFolder, options.MaxModelBytes, stale?.Model.Publication, CancellationToken.None);
                }
                catch (Exception e) when (stale is not null && e is ModelNotFoundException or ModelFetchFailedException)
                {
                    // No newer version, or none that checks out: keep serving the one there is.
                    if (e is ModelFetchFailedException) LogRefreshFailed(logger, name, e.Message);
                    lock (_loaded) stale.CheckedAt = time.GetUtcNow();
                    return stale.Model;
                }
                File.Delete(fetched.Path);
                LogFetched(logger, name, fetched.Model.Version, fetched.Source.Host.ToString());
                entry = new Entry(Serve(fetched.Model, fetched.Source.Publication), false, time.GetUtcNow());
            }
            await ReplaceAsync(name, entry);
            return entry.Model;
        }
        finally
        {
            lock (_loaded) _loading.Remove(name);
        }
    }

    /// <summary>The loaded model when it is still the one to serve: the held version, or a fetched one checked recently. Called under the lock.</summary>
    private ServedModel? Fresh(string name)
    {
        if (!_loaded.TryGetValue(name, out var entry)) return null;
        var held = store.Find(name);
        bool fresh = held is not null
            ? entry.Held && entry.Model.Publication.Sha256 == held.Publication.Sha256
            : !entry.Held && time.GetUtcNow() - entry.CheckedAt < options.FetchedModelTtl;
        if (!fresh) return null;
        entry.LastUsed = time.GetUtcNow();
        return entry.Model;
    }

    private ServedModel Serve(LoadedModelFile file, Protocol.Wire.Experts.ModelPublication publication) =>
        new(file.Name, file.Version, publication, build(file), options.MaxBatchTexts, options.QueryBatchLinger, time);

    /// <summary>Puts <paramref name="entry"/> in place and lets the one it replaces, and the least recently used beyond the bound, finish and go.</summary>
    private async Task ReplaceAsync(string name, Entry entry)
    {
        var retired = new List<Entry>();
        lock (_loaded)
        {
            if (_loaded.Remove(name, out var old)) retired.Add(old);
            _loaded[name] = entry;
            while (_loaded.Count > options.MaxLoadedModels)
            {
                var oldest = _loaded.MinBy(e => e.Value.LastUsed);
                _loaded.Remove(oldest.Key);
                retired.Add(oldest.Value);
            }
        }
        foreach (var e in retired) await e.Model.DisposeAsync();
    }

    private sealed class Entry(ServedModel model, bool held, DateTimeOffset now)
    {
        public ServedModel Model { get; } = model;

        public bool Held { get; } = held;

        public DateTimeOffset CheckedAt { get; set; } = now;

        public DateTimeOffset LastUsed { get; set; } = now;
    }

    [LoggerMessage(EventId = 540, Level = LogLevel.Information, Message = "Fetched model {Model} version {Version} from {PeerId} to answer queries")]
    private static partial void LogFetched(ILogger logger, string model, long version, string peerId);

    [LoggerMessage(EventId = 541, Level = LogLevel.Warning, Message = "A newer version of model {Model} could not be fetched; the loaded one keeps serving: {Problem}")]
    private static partial void LogRefreshFailed(ILogger logger, string model, string problem);
}
