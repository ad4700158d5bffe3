using Microsoft.Extensions.Logging;
using MoEMesh.Experts.Weights;
using MoEMesh.Node.Serving;
using MoEMesh.Node.Weights;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Weights;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Replicas kept in step: every Weights:ReconcilePeriod, each expert that other live hosts also serve (same
/// schema) is reconciled with them. Frozen replicas (no peer may train them here) take the newest snapshot a
/// replica signed. Trainable ones average: the replica with the lowest PeerId leads; it takes each other
/// replica's newest snapshot it has not averaged yet, within Weights:ReconcileMaxBytes per round, and averages
/// them with its own weights, each weighted by the updates it trained since its base (Hivemind's averager
/// weighs peers the same way, by what they trained since the last round); then publishes the average,
/// listing the snapshots it combined. A replica whose snapshot the average lists takes the average and keeps
/// what it trained since that snapshot (average + its weights now - that snapshot), so once training stops
/// every replica holds the same weights, bit for bit. Nobody adopts weights of another schema, whose hash
/// fails, or signed by a peer it does not take weights from.
/// </summary>
public sealed partial class MeshNode
{
    private Task ReconcileLoopAsync(CancellationToken stopping) => options.ClientMode ? Task.CompletedTask
        : EveryLoggedAsync(options.Weights.ReconcilePeriod, ReconcileAsync, LogReconcileError, stopping);

    /// <summary>Whether peers may train this node's experts (else they are frozen here).</summary>
    private bool Trainable => options.Serving.OpenTraining || options.Serving.TrainingPeers.Count > 0;

    /// <summary>One reconcile round over every hosted expert that has replicas.</summary>
    internal async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        long budget = options.Weights.ReconcileMaxBytes;
        foreach (var expert in Experts.Values)
        {
            var replicas = (await Directory.RediscoverAsync(expert.Uid, cancellationToken))
                .Where(h => h.Host != PeerId && h.SchemaHash == expert.SchemaHash).Select(h => h.Host).ToHashSet();
            if (replicas.Count == 0) continue;
            var leader = replicas.Append(PeerId).MinBy(p => p.ToString(), StringComparer.Ordinal);
            if (Trainable && leader != PeerId && expert.CurrentSnapshot is null && options.Weights.Publish)
            {
                // The leader averages published snapshots: this replica's must be there.
                Publish(expert);
                await AnnounceWeightsAsync([expert.Uid.Value], cancellationToken);
            }
            var snapshots = (await Weights.FindAsync([expert.Uid], cancellationToken))[expert.Uid]
                .Where(h => WeightsSnapshots.SignerOf(h.Snapshot) is { } signer && replicas.Contains(signer)).ToArray();
            if (!Trainable)
            {
                await TryAdoptAsync(expert, snapshots, s => s.Updates > expert.Backend.UpdateCount, cancellationToken);
                continue;
            }
            if (leader == PeerId) budget -= await AverageAsync(expert, snapshots, budget, cancellationToken);
            else await TakeAverageAsync(expert, leader, snapshots, cancellationToken);
        }
    }

    /// <summary>
    /// The leader's part: averages its weights with each replica's newest snapshot not averaged before (within
    /// <paramref name="budget"/> bytes), publishes the average and returns the bytes it fetched.
    /// </summary>
    private async Task<long> AverageAsync(HostedExpert expert, IReadOnlyList<WeightsHolderInfo> snapshots, long budget, CancellationToken cancellationToken)
    {
        var averaged = _weights.Of(expert.Uid.Value).Where(h => WeightsSnapshots.SignerOf(h.Snapshot) == PeerId)
            .SelectMany(h => h.Snapshot.AveragedFrom).Select(c => c.Sha256).ToHashSet(StringComparer.Ordinal);
        var newest = snapshots.GroupBy(h => WeightsSnapshots.SignerOf(h.Snapshot)!.Value).Select(g => g.First())
            .Where(h => !averaged.Contains(h.Snapshot.Sha256) && h.Snapshot.Sha256 != expert.CurrentSnapshot)
            .Take(WeightsSnapshots.MaxContributions).ToArray();
        var taken = new List<(WeightsSnapshot Snapshot, ExpertWeights Weights)>();
        long fetched = 0;
        try
        {
            foreach (var holder in newest)
            {
                var s = holder.Snapshot;
                if (_weights.FindBySha(s.Sha256) is null && fetched + (long)s.Size > budget) continue;
                if (WeightsSnapshots.Problem(s, expert.Uid.Value, expert.SchemaHash, options.Weights.AdoptFrom) is { } problem)
                {
                    LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), problem);
                    continue;
                }
                if (_weights.FindBySha(s.Sha256) is null) fetched += (long)s.Size;
                try
                {
                    if (await ReadSnapshotAsync(holder, expert, cancellationToken) is { } weights) taken.Add((s, weights));
                }
                catch (Exception e) when (e is IOException or InvalidDataException)
                {
                    LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), e.Message);
                }
            }
            if (taken.Count == 0) return fetched;
            using var own = ExpertWeights.Of(expert.Backend);
            var lineage = expert.Backend.Lineage;
            var trained = taken.Select(t => (double)(t.Snapshot.Updates - t.Snapshot.BaseUpdates)).Prepend(Math.Max(0, own.Updates - lineage.AtUpdate)).ToArray();
            long updates = taken.Select(t => t.Snapshot.BaseUpdates).Append(Math.Min(lineage.AtUpdate, own.Updates)).Max() + (long)trained.Sum();
            using (var average = ExpertWeights.Average([own, .. taken.Select(t => t.Weights)], trained, updates))
                average.LoadInto(expert.Backend, new WeightsLineage(WeightsLineage.Averaged, PeerId.ToString(), updates), since: own);
            await Task.Run(() => Publish(expert, taken.Select(t => new WeightsContribution { Host = WeightsSnapshots.SignerOf(t.Snapshot)!.Value.ToString(), Sha256 = t.Snapshot.Sha256 })), cancellationToken);
            LogAveraged(_logger, expert.Uid.Value, taken.Count + 1, updates);
            await AnnounceWeightsAsync([expert.Uid.Value], cancellationToken);
            return fetched;
        }
        finally
        {
            foreach (var t in taken) t.Weights.Dispose();
        }
    }

    /// <summary>
    /// A follower's part: takes the leader's newest average that lists one of this node's snapshots, keeping
    /// what this replica trained since that snapshot; nothing when there is none or it was taken already.
    /// </summary>
    private async Task TakeAverageAsync(HostedExpert expert, PeerId leader, IReadOnlyList<WeightsHolderInfo> snapshots, CancellationToken cancellationToken)
    {
        var lineage = expert.Backend.Lineage;
        foreach (var holder in snapshots.Where(h => WeightsSnapshots.SignerOf(h.Snapshot) == leader))
        {
            var s = holder.Snapshot;
            if (lineage.Source == WeightsLineage.Averaged && lineage.From == leader.ToString() && lineage.AtUpdate >= s.Updates) return;
            var mine = s.AveragedFrom.Where(c => c.Host == PeerId.ToString()).Select(c => _weights.FindBySha(c.Sha256))
                .FirstOrDefault(h => h is not null && WeightsSnapshots.SignerOf(h.Snapshot) == PeerId);
            if (mine is null) continue;
            if (WeightsSnapshots.Problem(s, expert.Uid.Value, expert.SchemaHash, options.Weights.AdoptFrom) is { } problem)
            {
                LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), problem);
                continue;
            }
            try
            {
                ExpertWeights contributed;
                await using (var file = new FileStream(mine.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous))
                    contributed = ExpertWeights.Read(file, expert.Backend, mine.Snapshot.Updates);
                using (contributed)
                using (var average = await ReadSnapshotAsync(holder, expert, cancellationToken))
                {
                    if (average is null) continue;
                    bool trainedSince = expert.Backend.UpdateCount != contributed.Updates;
                    average.LoadInto(expert.Backend, new WeightsLineage(WeightsLineage.Averaged, leader.ToString(), s.Updates), since: trainedSince ? contributed : null);
                    // Untrained since its snapshot, this replica now holds the average itself, bit for bit.
                    if (!trainedSince) (expert.Published, expert.PublishedChanges) = (_weights.FindBySha(s.Sha256), expert.Backend.Changes);
                }
                LogTookAverage(_logger, expert.Uid.Value, s.Updates, leader.ToString());
                await AnnounceWeightsAsync([expert.Uid.Value], cancellationToken);
                return;
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), e.Message);
            }
        }
    }

    [LoggerMessage(EventId = 537, Level = LogLevel.Information, Message = "Averaged the weights of {ExpertUid} over {Replicas} replicas, now at update {Updates}")]
    private static partial void LogAveraged(ILogger logger, string expertUid, int replicas, long updates);

    [LoggerMessage(EventId = 538, Level = LogLevel.Information, Message = "Took the average of {ExpertUid} at update {Updates} from {Leader}")]
    private static partial void LogTookAverage(ILogger logger, string expertUid, long updates, string leader);

    [LoggerMessage(EventId = 539, Level = LogLevel.Error, Message = "Reconciling replicas failed")]
    private static partial void LogReconcileError(ILogger logger, Exception exception);
}
