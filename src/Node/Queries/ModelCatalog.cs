using Microsoft.Extensions.Logging;
using MoEMesh.Node.Models;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Queries;

/// <summary>
/// The models this node has loaded to answer queries, by name. A model the node holds is loaded from its
/// file (and again when a newer version is installed); one it does not hold is fetched from a holder
/// (newest version, checked) and kept in memory only, and after FetchedModelTtl the DHT is asked whether a
/// newer version exists. At most MaxLoadedModels stay loaded; the least recently used goes first.
/// </summary>
internal sealed partial class ModelCatalog(ModelStore store, ModelFetcher fetcher, ModelServingOptions options, TimeProvider time,
    Func<LoadedModelFile, MoEModel> build, ILogger logger) : IAsyncDisposable
{
    private readonly Dictionary<string, Entry> _loaded = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _loading = new(1, 1);

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
    public async Task<ServedModel> GetAsync(string name, CancellationToken cancellationToken)
    {
        if (Fresh(name) is { } ready) return ready;
        await _loading.WaitAsync(cancellationToken);
        try
        {
            if (Fresh(name) is { } loadedMeanwhile) return loadedMeanwhile;
            var held = store.Find(name);
            Entry entry;
            if (held is not null)
            {
                entry = new Entry(Serve(ModelFile.Load(held.Path), held.Publication.Sha256), true, time.GetUtcNow());
            }
            else
            {
                Entry? stale;
                lock (_loaded) stale = _loaded.GetValueOrDefault(name);
                FetchedModel fetched;
                try
                {
                    fetched = await fetcher.FetchAsync(name, store.IncomingFolder, h => h.Size <= options.MaxModelBytes && h.Version > (stale?.Model.Version ?? long.MinValue),
                        cancellationToken);
                }
                catch (ModelNotFoundException) when (stale is not null)
                {
                    // No newer version: keep serving the one there is.
                    stale.CheckedAt = time.GetUtcNow();
                    return stale.Model;
                }
                File.Delete(fetched.Path);
                LogFetched(logger, name, fetched.Model.Version, fetched.Source.Host.ToString());
                entry = new Entry(Serve(fetched.Model, fetched.Source.Sha256), false, time.GetUtcNow());
            }
            await ReplaceAsync(name, entry);
            return entry.Model;
        }
        finally
        {
            _loading.Release();
        }
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

    /// <summary>The loaded model when it is still the one to serve: the held version, or a fetched one checked recently.</summary>
    private ServedModel? Fresh(string name)
    {
        var held = store.Find(name);
        lock (_loaded)
        {
            if (!_loaded.TryGetValue(name, out var entry)) return null;
            bool fresh = held is not null
                ? entry.Held && entry.Model.Sha256 == held.Publication.Sha256
                : !entry.Held && time.GetUtcNow() - entry.CheckedAt < options.FetchedModelTtl;
            if (!fresh) return null;
            entry.LastUsed = time.GetUtcNow();
            return entry.Model;
        }
    }

    private ServedModel Serve(LoadedModelFile file, string sha256) => new(file.Name, file.Version, sha256, build(file), options.MaxBatchTexts, options.QueryBatchLinger, time);

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
}
