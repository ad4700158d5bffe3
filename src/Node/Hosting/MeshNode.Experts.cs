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
    private async Task<IReadOnlyDictionary<string, HostedExpert>> CreateExpertsAsync(CancellationToken cancellationToken)
    {
        var chosen = new List<(ExpertUid Uid, ExpertHostingOptions Group)>();
        var random = new Random(BitConverter.ToInt32(identity.PeerId.Hash[..4]));
        foreach (var group in options.Experts)
        {
            var uids = group.Uid is not null
                ? [ExpertUid.Parse(group.Uid)]
                : await TakeFreeUidsAsync(UidPattern.Parse(group.Pattern!), group.Count, chosen.Select(c => c.Uid.Value), random, cancellationToken);
            chosen.AddRange(uids.Select(u => (u, group)));
        }
        // Building an expert is allocation and seeded initialisation (a 1024-wide ffn with Adam holds about
        // 134 MB of weights, gradients and optimizer state), independent per expert: build them in parallel.
        var built = new HostedExpert[chosen.Count];
        await Parallel.ForAsync(0, chosen.Count, cancellationToken, (i, _) =>
        {
            built[i] = Build(chosen[i].Uid, chosen[i].Group);
            return ValueTask.CompletedTask;
        });
        return built.ToDictionary(e => e.Uid.Value, StringComparer.Ordinal);
    }

    private HostedExpert Build(ExpertUid uid, ExpertHostingOptions group)
    {
        var spec = new ExpertSpec(group.Type, group.HiddenDim, group.InnerDim, ExpertSpec.SeedOf(uid.Value));
        var backend = new ExpertBackend(uid.Value, spec, registry.Create(spec), new OptimizerOptions { Name = group.Optimizer, LearningRate = group.LearningRate, MaxGradNorm = group.MaxGradNorm });
        try
        {
            if (ExpertCheckpoint.TryRestore(backend, CheckpointFolder(uid))) LogRestored(_logger, uid.Value, backend.UpdateCount);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new NodeConfigurationException($"{NodeOptions.Section}:{nameof(NodeOptions.Experts)}:{options.Experts.IndexOf(group)}: the checkpoint of {uid} cannot be restored: "
                + $"{e.Message.TrimEnd('.')}. Configure the expert as it was saved, or move {CheckpointFolder(uid)} away to start it afresh.", e);
        }
        return new HostedExpert(uid, backend, time);
    }

    private async Task<IReadOnlyList<ExpertUid>> TakeFreeUidsAsync(UidPattern pattern, int count, IEnumerable<string> taken, Random random, CancellationToken cancellationToken)
    {
        var excluded = taken.ToHashSet(StringComparer.Ordinal);
        var chosen = CheckpointedUids().Where(u => pattern.Matches(u) && !excluded.Contains(u.Value)).Take(count).ToList();
        var candidates = pattern.Expand().Where(u => !excluded.Contains(u.Value) && !chosen.Contains(u)).OrderBy(_ => random.Next()).ToList();
        // Ask the DHT about a few times more candidates than needed, not the whole grid.
        var asked = candidates.Take(Math.Max(4 * count, 16)).ToList();
        var hosts = asked.Count == 0 ? new Dictionary<ExpertUid, IReadOnlyList<Routing.Directory.ExpertHostInfo>>() : await Directory.FindAsync(asked, cancellationToken);
        chosen.AddRange(asked.Where(u => hosts.GetValueOrDefault(u) is not { Count: > 0 }).Take(count - chosen.Count));
        // When every candidate asked is hosted elsewhere, become a replica rather than host nothing.
        chosen.AddRange(candidates.Where(u => !chosen.Contains(u)).Take(count - chosen.Count));
        return chosen;
    }

    private IEnumerable<ExpertUid> CheckpointedUids()
    {
        if (!System.IO.Directory.Exists(options.CheckpointDirectory)) yield break;
        foreach (var folder in System.IO.Directory.EnumerateDirectories(options.CheckpointDirectory).Order(StringComparer.Ordinal))
            if (File.Exists(Path.Combine(folder, ExpertCheckpoint.ManifestName)) && ExpertUid.TryParse(Path.GetFileName(folder), out var uid, out _))
                yield return uid;
    }

    private Task CheckpointLoopAsync(CancellationToken stopping) => EveryAsync(options.CheckpointPeriod, _ =>
    {
        SaveCheckpoints();
        return Task.CompletedTask;
    }, stopping);

    /// <summary>
    /// Writes every expert's checkpoint: from the checkpoint loop while experts train (the save holds the
    /// expert's weights lock, so it never sees a step half-applied), and once more on stop. Returns the
    /// uids whose checkpoint could not be written (each logged).
    /// </summary>
    private IReadOnlyList<string> SaveCheckpoints()
    {
        var failed = new List<string>();
        foreach (var expert in Experts.Values)
        {
            try
            {
                ExpertCheckpoint.Save(expert.Backend, CheckpointFolder(expert.Uid));
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

    [LoggerMessage(EventId = 510, Level = LogLevel.Information, Message = "Restored expert {ExpertUid} at update {Updates}")]
    private static partial void LogRestored(ILogger logger, string expertUid, long updates);

    [LoggerMessage(EventId = 511, Level = LogLevel.Error, Message = "Could not write the checkpoint of {ExpertUid}: {Reason}")]
    private static partial void LogCheckpointFailed(ILogger logger, string expertUid, string reason);

    [LoggerMessage(EventId = 512, Level = LogLevel.Debug, Message = "The checkpoint write that failed")]
    private static partial void LogCheckpointFailedTrace(ILogger logger, Exception exception);
}
