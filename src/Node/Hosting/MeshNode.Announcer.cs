using Microsoft.Extensions.Logging;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Announcing: every UpdatePeriod each hosted expert is re-declared, signed by this node, with its
/// addresses, schema hash and current load, expiring after 2 × UpdatePeriod, so a node that dies drops
/// out of the directory within two periods. Held models are announced the same way (the model folder is
/// rescanned each time, so a model put there is announced within a period; one installed from a peer is
/// announced at once), and so are the snapshots of expert weights it holds (the newest of each uid).
/// </summary>
public sealed partial class MeshNode
{
    private async Task AnnounceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var expiration = now + 2 * options.UpdatePeriod;
        var experts = Experts.Values.Select(e => (e.Uid, e.Record(AnnounceAddresses, now))).ToArray();
        var models = _store.Refresh().Select(m => (m.Name, m.Record(AnnounceAddresses))).ToArray();
        var weights = WeightsRecords();
        var results = await Task.WhenAll(
            experts.Length > 0 ? Directory.DeclareAsync(identity, experts, expiration, cancellationToken) : Task.FromResult<IReadOnlyList<Dht.DhtStoreResult>>([]),
            models.Length > 0 ? Models.DeclareAsync(identity, models, expiration, cancellationToken) : Task.FromResult<IReadOnlyList<Dht.DhtStoreResult>>([]),
            weights.Length > 0 ? Weights.DeclareAsync(identity, weights, expiration, cancellationToken) : Task.FromResult<IReadOnlyList<Dht.DhtStoreResult>>([]));
        foreach (var failed in results.SelectMany(r => r).Where(r => !r.Succeeded)) LogAnnounceFailed(_logger, failed.Record.Key, failed.Problem ?? "no replica");
    }

    private Task AnnounceLoopAsync(CancellationToken stopping) => options.ClientMode ? Task.CompletedTask
        : EveryLoggedAsync(options.UpdatePeriod, AnnounceAsync, LogAnnounceError, stopping);

    [LoggerMessage(EventId = 520, Level = LogLevel.Warning, Message = "Announcing {Key} failed: {Problem}")]
    private static partial void LogAnnounceFailed(ILogger logger, string key, string problem);

    [LoggerMessage(EventId = 521, Level = LogLevel.Error, Message = "Announcing experts failed")]
    private static partial void LogAnnounceError(ILogger logger, Exception exception);
}
