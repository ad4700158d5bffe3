using Microsoft.Extensions.Logging;
using MoEMesh.Experts;
using MoEMesh.Node.Serving;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Which experts this node hosts, and their checkpoints. A fixed uid is taken as given. A pattern takes
/// Count uids: first those this node already has checkpoints for (so a restart keeps its experts), then
/// uids no other host announces, in an order seeded by this node's id so that nodes sharing a pattern
/// spread over it. Initial weights are seeded by the uid, so two hosts of one uid start identical.
/// </summary>
public sealed partial class MeshNode
{
    /// <summary>Experts whose uid is known before the node joins (exact uids, and a pattern's checkpointed uids), built while it starts, with their groups.</summary>
    private Task<Dictionary<string, (HostedExpert Expert, ExpertHostingOptions Group)>>? _known;

    /// <summary>
    /// Starts building, on other threads, the experts that will be hosted whatever the DHT says: exact uids
    /// and the checkpointed uids a pattern takes first. Restoring their checkpoints then overlaps the rest of
    /// the start (HTTP, joining); <see cref="CreateExpertsAsync"/> takes them.
    /// </summary>
    private void StartBuildingKnownExperts()
    {
        var known = new List<(ExpertUid Uid, ExpertHostingOptions Group)>();
        foreach (var group in options.Experts)
        {
            var taken = known.Select(k => k.Uid.Value).ToHashSet(StringComparer.Ordinal);
            var uids = group.Uid is not null ? [ExpertUid.Parse(group.Uid)] : CheckpointedPicks(UidPattern.Parse(group.Pattern!), group.Count, taken);
            known.AddRange(uids.Where(u => !taken.Contains(u.Value)).Select(u => (u, group)));
        }
        var stopping = _stopping.Token;
        _known = Task.Run(async () =>
        {
            var built = await BuildAll(known, stopping);
            return known.ToDictionary(k => k.Uid.Value, k => (built[k.Uid.Value], k.Group), StringComparer.Ordinal);
        }, stopping);
    }

    /// <summary>The checkpointed uids a pattern takes first: those of <paramref name="pattern"/> not <paramref name="taken"/> already, at most <paramref name="count"/>.</summary>
    private List<ExpertUid> CheckpointedPicks(UidPattern pattern, int count, IReadOnlySet<string> taken) =>
        CheckpointedUids().Where(u => pattern.Matches(u) && !taken.Contains(u.Value)).Take(count).ToList();

    private async Task<IReadOnlyDictionary<string, HostedExpert>> CreateExpertsAsync(CancellationToken cancellationToken)
    {
        var known = _known is null ? [] : await _known;
        var chosen = new List<(ExpertUid Uid, ExpertHostingOptions Group)>();
        var random = new Random(BitConverter.ToInt32(identity.PeerId.Hash[..4]));
        foreach (var group in options.Experts)
        {
            var uids = group.Uid is not null
                ? [ExpertUid.Parse(group.Uid)]
                : await TakeFreeUidsAsync(UidPattern.Parse(group.Pattern!), group.Count, chosen.Select(c => c.Uid.Value), random, cancellationToken);
            chosen.AddRange(uids.Select(u => (u, group)));
        }
        // An expert built early is taken when the choice is the same uid of the same group (it always is; the check keeps it so).
        HostedExpert? Early((ExpertUid Uid, ExpertHostingOptions Group) c) =>
            known.TryGetValue(c.Uid.Value, out var k) && ReferenceEquals(k.Group, c.Group) ? k.Expert : null;
        var rest = await BuildAll(chosen.Where(c => Early(c) is null).ToList(), cancellationToken);
        return chosen.Select(c => Early(c) ?? rest[c.Uid.Value]).ToDictionary(e => e.Uid.Value, StringComparer.Ordinal);
    }

    /// <summary>
    /// Builds experts in parallel: building one is allocation and seeded initialisation (a 1024-wide ffn holds
    /// 34 MB of weights and as much again of gradients), or reading its checkpoint, independent per expert.
    /// </summary>
    private async Task<IReadOnlyDictionary<string, HostedExpert>> BuildAll(IReadOnlyList<(ExpertUid Uid, ExpertHostingOptions Group)> experts, CancellationToken cancellationToken)
    {
        var built = new HostedExpert[experts.Count];
        await Parallel.ForAsync(0, experts.Count, cancellationToken, (i, _) =>
        {
            built[i] = Build(experts[i].Uid, experts[i].Group);
            return ValueTask.CompletedTask;
        });
        return built.ToDictionary(e => e.Uid.Value, StringComparer.Ordinal);
    }

    private HostedExpert Build(ExpertUid uid, ExpertHostingOptions group)
    {
        var spec = new ExpertSpec(group.Type, group.HiddenDim, group.InnerDim, ExpertSpec.SeedOf(uid.Value));
        var backend = new ExpertBackend(uid.Value, spec, registry.Create(spec), new OptimizerOptions { Name = group.Optimizer, LearningRate = group.LearningRate, MaxGradNorm = group.MaxGradNorm });
        long? saved = null;
        try
        {
            if (ExpertCheckpoint.TryRestore(backend, CheckpointFolder(uid)))
            {
                saved = backend.UpdateCount;
                LogRestored(_logger, uid.Value, backend.UpdateCount);
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new NodeConfigurationException($"{NodeOptions.Section}:{nameof(NodeOptions.Experts)}:{options.Experts.IndexOf(group)}: the checkpoint of {uid} cannot be restored: "
                + $"{e.Message.TrimEnd('.')}. Configure the expert as it was saved, or move {CheckpointFolder(uid)} away to start it afresh.", e);
        }
        return new HostedExpert(uid, backend, time) { CheckpointedAt = saved };
    }

    private async Task<IReadOnlyList<ExpertUid>> TakeFreeUidsAsync(UidPattern pattern, int count, IEnumerable<string> taken, Random random, CancellationToken cancellationToken)
    {
        var excluded = taken.ToHashSet(StringComparer.Ordinal);
        var chosen = CheckpointedPicks(pattern, count, excluded);
        if (options.Weights.AdoptOrphans && chosen.Count < count)
            chosen.AddRange((await OrphansAsync(pattern, excluded.Concat(chosen.Select(c => c.Value)).ToHashSet(StringComparer.Ordinal), cancellationToken)).Take(count - chosen.Count));
        var candidates = pattern.Expand().Where(u => !excluded.Contains(u.Value) && !chosen.Contains(u)).OrderBy(_ => random.Next()).ToList();
        // Ask the DHT about a few times more candidates than needed, not the whole grid.
        var asked = candidates.Take(Math.Max(4 * count, 16)).ToList();
        var hosts = asked.Count == 0 ? new Dictionary<ExpertUid, IReadOnlyList<Routing.Directory.ExpertHostInfo>>() : await Directory.FindAsync(asked, cancellationToken);
        chosen.AddRange(asked.Where(u => hosts.GetValueOrDefault(u) is not { Count: > 0 }).Take(count - chosen.Count));
        // When every candidate asked is hosted elsewhere, become a replica rather than host nothing.
        chosen.AddRange(candidates.Where(u => !chosen.Contains(u)).Take(count - chosen.Count));
        return chosen;
    }

    /// <summary>Most uids of a pattern asked about when looking for orphans.</summary>
    private const int MaxOrphanCandidates = 1024;

    /// <summary>
    /// The uids of <paramref name="pattern"/> (not <paramref name="taken"/>) that have published weights and no live
    /// host: experts a model routes to whose hosts have left. Newest weights (most updates) first.
    /// </summary>
    private async Task<IReadOnlyList<ExpertUid>> OrphansAsync(UidPattern pattern, IReadOnlySet<string> taken, CancellationToken cancellationToken)
    {
        var candidates = pattern.Expand().Where(u => !taken.Contains(u.Value)).Take(MaxOrphanCandidates).ToArray();
        if (candidates.Length == 0) return [];
        var published = await Weights.FindAsync(candidates, cancellationToken);
        var withWeights = candidates.Where(u => published[u].Count > 0).ToArray();
        if (withWeights.Length == 0) return [];
        var hosts = await Directory.FindAsync(withWeights, cancellationToken);
        return withWeights.Where(u => hosts[u].Count == 0).OrderByDescending(u => published[u][0].Snapshot.Updates).ThenBy(u => u.Value, StringComparer.Ordinal).ToArray();
    }

    private IEnumerable<ExpertUid> CheckpointedUids()
    {
        if (!System.IO.Directory.Exists(options.CheckpointDirectory)) yield break;
        foreach (var folder in System.IO.Directory.EnumerateDirectories(options.CheckpointDirectory).Order(StringComparer.Ordinal))
            if (File.Exists(Path.Combine(folder, ExpertCheckpoint.ManifestName)) && ExpertUid.TryParse(Path.GetFileName(folder), out var uid, out _))
                yield return uid;
    }

    /// <summary>
    /// Reads the optimizer state the restored experts left to be read later, one expert at a time, once the
    /// node serves: their first training step then does not pay for it. Damaged state is logged and the
    /// expert trains on from fresh optimizer state; state that cannot be read now is read at the first step.
    /// </summary>
    private async Task LoadOptimizerStateAsync(CancellationToken stopping)
    {
        await Task.Yield();
        foreach (var expert in Experts.Values.Where(e => e.Backend.Optimizer.StatePending))
        {
            if (stopping.IsCancellationRequested) return;
            try
            {
                expert.Backend.LoadOptimizerState();
            }
            catch (InvalidDataException e)
            {
                LogOptimizerStateDamaged(_logger, expert.Uid.Value, e.Message);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogOptimizerStateUnread(_logger, expert.Uid.Value, e.Message);
            }
        }
    }

    private Task CheckpointLoopAsync(CancellationToken stopping) => EveryAsync(options.CheckpointPeriod, _ =>
    {
        SaveCheckpoints();
        return Task.CompletedTask;
    }, stopping);

    /// <summary>
    /// Writes the checkpoint of every expert that has trained since its last one: from the checkpoint loop
    /// while experts train (the save holds the expert's weights lock, so it never sees a step half-applied),
    /// and once more on stop. Returns the uids whose checkpoint could not be written (each logged).
    /// </summary>
    private IReadOnlyList<string> SaveCheckpoints()
    {
        var failed = new List<string>();
        foreach (var expert in Experts.Values)
        {
            long updates = expert.Backend.UpdateCount;
            if (expert.CheckpointedAt == updates) continue;
            try
            {
                ExpertCheckpoint.Save(expert.Backend, CheckpointFolder(expert.Uid));
                expert.CheckpointedAt = updates;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                LogCheckpointFailed(_logger, expert.Uid.Value, e.Message);
                LogCheckpointFailedTrace(_logger, e);
                failed.Add(expert.Uid.Value);
            }
        }
        return failed;
    }

    private string CheckpointFolder(ExpertUid uid) => Path.Combine(options.CheckpointDirectory, uid.Value);

    [LoggerMessage(EventId = 513, Level = LogLevel.Error, Message = "The optimizer state in the checkpoint of {ExpertUid} is damaged ({Problem}); it trains on from fresh optimizer state")]
    private static partial void LogOptimizerStateDamaged(ILogger logger, string expertUid, string problem);

    [LoggerMessage(EventId = 514, Level = LogLevel.Warning, Message = "Could not read the optimizer state in the checkpoint of {ExpertUid} ({Problem}); its first training step reads it")]
    private static partial void LogOptimizerStateUnread(ILogger logger, string expertUid, string problem);

    [LoggerMessage(EventId = 510, Level = LogLevel.Information, Message = "Restored expert {ExpertUid} at update {Updates}")]
    private static partial void LogRestored(ILogger logger, string expertUid, long updates);

    [LoggerMessage(EventId = 511, Level = LogLevel.Error, Message = "Could not write the checkpoint of {ExpertUid}: {Reason}")]
    private static partial void LogCheckpointFailed(ILogger logger, string expertUid, string reason);

    [LoggerMessage(EventId = 512, Level = LogLevel.Debug, Message = "The checkpoint write that failed")]
    private static partial void LogCheckpointFailedTrace(ILogger logger, Exception exception);
}
