using Microsoft.Extensions.Logging;
using MoEMesh.Node.Models;
using MoEMesh.Node.Queries;
using MoEMesh.Node.Serving;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Models: this node holds the models in its model folder (and those peers hand it with model.store),
/// serves their bytes (blob.fetch), announces them, and every UpdatePeriod fetches a newer version of a
/// held model from the holders of that version when the same publisher has published one. It answers
/// queries (POST /v1/query, model.query) as their gating node.
/// </summary>
public sealed partial class MeshNode
{
    private ModelStore _store = null!;
    private ModelFetcher _fetcher = null!;
    private ModelCatalog? _catalog;

    /// <summary>Answers queries; set once started.</summary>
    internal QueryService Queries { get; private set; } = null!;

    /// <summary>The models this node holds.</summary>
    internal IReadOnlyList<HeldModel> HeldModels => _store.Current;

    /// <summary>The last queries answered here, with their routes (GET /v1/routes).</summary>
    internal RecentQueries RecentQueries { get; } = new(options.Models.RecentQueries);

    /// <summary>The models loaded to answer queries.</summary>
    internal IReadOnlyList<ServedModel> LoadedModels => _catalog?.Loaded ?? [];

    private void HoldModels(PeerRouter router)
    {
        _store = new ModelStore(options.ModelDirectory, options.Models, loggers.CreateLogger<ModelStore>());
        _store.Refresh();
        _fetcher = new ModelFetcher(Models, new BlobClient(Transport, time), TimeSpan.FromSeconds(60));
        router.MapBlobs(_store, sha => _weights?.FindBySha(sha));
        new ModelUploads(_store, options.Models, time, _ => AnnounceAsync(_stopAnnouncing.Token)).Map(router);
    }

    /// <summary>
    /// Answers a query document (POST /v1/query and model.query alike): 503 while the node has not yet joined
    /// and built its experts, else the query service's answer.
    /// </summary>
    public Task<(int Status, byte[] Json)> AnswerQueryAsync(ReadOnlyMemory<byte> body, CancellationToken cancellationToken) => Ready
        ? Queries.AnswerAsync(body, cancellationToken)
        : Task.FromResult((503, new QueryError("the node is still starting (joining the swarm, building its experts); ask again in a moment.").ToJson()));

    private void ServeQueries(PeerRouter router)
    {
        _catalog = new ModelCatalog(_store, _fetcher, options.Models, time, file => new MoEModel(file.Spec, file.Weights, CreateMixtureOfExperts), loggers.CreateLogger<ModelCatalog>());
        Queries = new QueryService(_catalog, options.Models, PeerId, time, loggers.CreateLogger<QueryService>(), _metrics!.Query, RecentQueries);
        router.Map(QueryMethod, async (request, cancellationToken) =>
        {
            if (request.Payload.Length > options.Models.MaxQueryBytes)
                return PeerResponse.Error(StatusCode.InvalidArgument,
                    System.Text.Encoding.UTF8.GetString(new QueryError($"the query is larger than {options.Models.MaxQueryBytes} bytes (MaxQueryBytes).").ToJson()));
            var (status, json) = await AnswerQueryAsync(request.Payload, cancellationToken);
            return status == 200 ? PeerResponse.Ok(payload: json) : PeerResponse.Error(PeerStatusOf(status), System.Text.Encoding.UTF8.GetString(json));
        });
    }

    /// <summary>The peer method that answers queries.</summary>
    public const string QueryMethod = "model.query";

    private static StatusCode PeerStatusOf(int httpStatus) => httpStatus switch
    {
        404 => StatusCode.NotFound,
        503 => StatusCode.Unavailable,
        _ => StatusCode.InvalidArgument,
    };

    /// <summary>
    /// Every UpdatePeriod: for each held model signed by its publisher, a newer version from the same
    /// publisher announced by other holders is fetched, checked and installed in place of the held one.
    /// A failure is logged and tried again next period; only the stop ends the loop.
    /// </summary>
    private Task ModelSyncLoopAsync(CancellationToken stopping) => EveryAsync(options.UpdatePeriod, async token =>
    {
        foreach (var held in _store.Refresh().Where(m => ModelPublications.IsSigned(m.Publication)))
        {
            try
            {
                var fetched = await _fetcher.FetchAsync(held.Name, _store.IncomingFolder, options.Models.MaxModelBytes, held.Publication, token);
                try
                {
                    _store.Install(fetched.Path, fetched.Source.Publication, fetched.Model);
                }
                finally
                {
                    File.Delete(fetched.Path);
                }
                await AnnounceAsync(token);
            }
            catch (ModelNotFoundException)
            {
                // No newer version: the usual case.
            }
            catch (Exception e) when (!token.IsCancellationRequested)
            {
                LogModelSyncFailed(_logger, held.Name, e.Message);
            }
        }
    }, stopping);

    [LoggerMessage(EventId = 504, Level = LogLevel.Warning, Message = "Could not take the newer version of model {Model}: {Problem}")]
    private static partial void LogModelSyncFailed(ILogger logger, string model, string problem);
}
