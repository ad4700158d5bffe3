using System.ComponentModel.DataAnnotations;
using MoEMesh.Settings;

namespace MoEMesh.Node.Models;

/// <summary>How a node holds, fetches and serves models (the "MoEMesh:Models" section).</summary>
public sealed class ModelServingOptions : IValidatableObject
{
    /// <summary>Whether peers may hand this node models to hold (<c>model.store</c>). Default true.</summary>
    public bool AcceptUploads { get; set; } = true;

    /// <summary>The default of <see cref="MaxModelBytes"/>, which the CLI's eval fetches within too.</summary>
    public const long DefaultMaxModelBytes = 512L << 20;

    /// <summary>Largest model file held, uploaded or fetched. Default 512 MiB.</summary>
    [Bytes(Min = 1024)]
    public long MaxModelBytes { get; set; } = DefaultMaxModelBytes;

    /// <summary>Most models held on disk; an upload of a new name beyond it is refused. Default 16.</summary>
    [Count]
    public int MaxHeldModels { get; set; } = 16;

    /// <summary>Most models kept loaded in memory to answer queries; the least recently used goes first. Default 4.</summary>
    [Count]
    public int MaxLoadedModels { get; set; } = 4;

    /// <summary>How long a model fetched from a peer is served before the DHT is asked for a newer version. Default 60 s.</summary>
    [Duration]
    public TimeSpan FetchedModelTtl { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Texts one query may carry. Default 256.</summary>
    [Count]
    public int MaxQueryTexts { get; set; } = 256;

    /// <summary>Largest query body in bytes. Default 1 MiB.</summary>
    [Bytes(Min = 64)]
    public int MaxQueryBytes { get; set; } = 1 << 20;

    /// <summary>A query's deadline when it names none ("timeout_ms"). Default 10 s.</summary>
    [Duration]
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest deadline a query may ask for. Default 60 s.</summary>
    [Duration]
    public TimeSpan MaxQueryTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Most texts the node runs through a model in one batch (concurrent queries are batched together). Default 256.</summary>
    [Count]
    public int MaxBatchTexts { get; set; } = 256;

    /// <summary>
    /// How long a batch may wait for the clients its last batch answered to ask again (they then form one
    /// batch with those already waiting, instead of two half batches taking turns). A lone client never
    /// waits. Default 2 ms; zero switches it off.
    /// </summary>
    [Linger]
    public TimeSpan QueryBatchLinger { get; set; } = TimeSpan.FromMilliseconds(2);

    /// <summary>
    /// Queries this node answered that GET /v1/routes and the status page show, with their routes and the
    /// first 120 characters of each text. Default 32; zero keeps none (for a node whose clients' texts
    /// should not be shown on its HTTP port).
    /// </summary>
    [Count(Min = 0, Max = 10_000)]
    public int RecentQueries { get; set; } = 32;

    /// <inheritdoc />
    IEnumerable<ValidationResult> IValidatableObject.Validate(ValidationContext context)
    {
        if (QueryTimeout > MaxQueryTimeout)
            yield return new($"must not exceed MaxQueryTimeout ({MaxQueryTimeout}); got {QueryTimeout}", [nameof(QueryTimeout)]);
    }
}
