namespace MoEMesh.Node.Models;

/// <summary>How a node holds, fetches and serves models (the "MoEMesh:Models" section).</summary>
public sealed class ModelServingOptions
{
    /// <summary>Whether peers may hand this node models to hold (<c>model.store</c>). Default true.</summary>
    public bool AcceptUploads { get; set; } = true;

    /// <summary>The default of <see cref="MaxModelBytes"/>, which the CLI's eval fetches within too.</summary>
    public const long DefaultMaxModelBytes = 512L << 20;

    /// <summary>Largest model file held, uploaded or fetched. Default 512 MiB.</summary>
    public long MaxModelBytes { get; set; } = DefaultMaxModelBytes;

    /// <summary>Most models held on disk; an upload of a new name beyond it is refused. Default 16.</summary>
    public int MaxHeldModels { get; set; } = 16;

    /// <summary>Most models kept loaded in memory to answer queries; the least recently used goes first. Default 4.</summary>
    public int MaxLoadedModels { get; set; } = 4;

    /// <summary>How long a model fetched from a peer is served before the DHT is asked for a newer version. Default 60 s.</summary>
    public TimeSpan FetchedModelTtl { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Texts one query may carry. Default 256.</summary>
    public int MaxQueryTexts { get; set; } = 256;

    /// <summary>Largest query body in bytes. Default 1 MiB.</summary>
    public int MaxQueryBytes { get; set; } = 1 << 20;

    /// <summary>A query's deadline when it names none ("timeout_ms"). Default 10 s.</summary>
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest deadline a query may ask for. Default 60 s.</summary>
    public TimeSpan MaxQueryTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Most texts the node runs through a model in one batch (concurrent queries are batched together). Default 256.</summary>
    public int MaxBatchTexts { get; set; } = 256;

    /// <summary>
    /// How long a batch may wait for the clients its last batch answered to ask again (they then form one
    /// batch with those already waiting, instead of two half batches taking turns). A lone client never
    /// waits. Default 2 ms; zero switches it off.
    /// </summary>
    public TimeSpan QueryBatchLinger { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>Throws naming the setting when a value cannot work.</summary>
    public void Validate()
    {
        if (MaxModelBytes < 1024) throw new ArgumentException($"MaxModelBytes must be at least 1024; got {MaxModelBytes}.");
        if (MaxHeldModels < 1) throw new ArgumentException($"MaxHeldModels must be at least 1; got {MaxHeldModels}.");
        if (MaxLoadedModels < 1) throw new ArgumentException($"MaxLoadedModels must be at least 1; got {MaxLoadedModels}.");
        if (MaxQueryTexts < 1) throw new ArgumentException($"MaxQueryTexts must be at least 1; got {MaxQueryTexts}.");
        if (MaxQueryBytes < 64) throw new ArgumentException($"MaxQueryBytes must be at least 64; got {MaxQueryBytes}.");
        if (MaxBatchTexts < 1) throw new ArgumentException($"MaxBatchTexts must be at least 1; got {MaxBatchTexts}.");
        foreach (var (name, value) in new[] { (nameof(FetchedModelTtl), FetchedModelTtl), (nameof(QueryTimeout), QueryTimeout), (nameof(MaxQueryTimeout), MaxQueryTimeout) })
            if (value <= TimeSpan.Zero || value > TimeSpan.FromDays(1)) throw new ArgumentException($"{name} must be positive and at most a day; got {value}.");
        if (QueryBatchLinger < TimeSpan.Zero || QueryBatchLinger > TimeSpan.FromSeconds(1)) throw new ArgumentException($"QueryBatchLinger must be between 0 and 1 s; got {QueryBatchLinger}.");
        if (QueryTimeout > MaxQueryTimeout) throw new ArgumentException($"QueryTimeout ({QueryTimeout}) must not exceed MaxQueryTimeout ({MaxQueryTimeout}).");
    }
}
