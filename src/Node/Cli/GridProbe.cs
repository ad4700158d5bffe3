using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Node.Cli;

/// <summary>
/// Before training: does the swarm host experts of the grid, and of which kind? Beam search with equal
/// scores finds a few live uids; their hosts' expert.info give each one's type and width. The kind to train
/// with is the one asked for, or the one the swarm hosts most when nothing was asked.
/// </summary>
internal static class GridProbe
{
    /// <summary>The kind of expert to train with, or why there is none (the CLI exits 3).</summary>
    public static async Task<(ExpertKind? Kind, string? Problem)> ProbeAsync(SwarmClient swarm, ExpertGrid grid, string? type, int? width, CancellationToken cancellationToken)
    {
        var pattern = $"{grid.Name}.{string.Join('.', grid.Sizes.Select(s => $"[0:{s}]"))}";
        var equal = (IReadOnlyList<float[]>)grid.Sizes.Select(s => new float[s]).ToArray();
        var found = (await new BeamSearch(swarm.Directory).FindAsync(grid, [equal], k: 8, beamWidth: 8, cancellationToken))[0];
        if (found.Count == 0)
            return (null, $"The swarm, as {swarm.Entry} sees it, hosts no expert of the grid {pattern}. Start nodes that host some, for example "
                + $"moemesh node --expert-pattern \"{pattern}\" --num-experts 4 --peers {swarm.Entry.Address}, or train with the --grid and --grid-name they host.");
        var hosts = await swarm.Directory.FindAsync(found.Select(f => f.Uid).ToArray(), cancellationToken);
        var invoker = new RemoteExpertInvoker(swarm.Transport);
        var deadline = TimeProvider.System.GetUtcNow() + TimeSpan.FromSeconds(10);
        var infos = await Task.WhenAll(hosts.Values.SelectMany(h => h).Select(host => invoker.InfoAsync(new ExpertTarget(host.Uid, host.Endpoint), deadline, cancellationToken)));
        var kinds = infos.Where(info => info.IsOk && info.Value!.InputShape.Count == 1 && info.Value.OutputShape.SequenceEqual(info.Value.InputShape))
            .Select(info => new ExpertKind(info.Value!.Type, info.Value.InputShape[0])).ToList();
        if (kinds.Count == 0)
            return (null, $"The swarm announces experts of {pattern} ({string.Join(", ", found.Select(f => f.Uid))}), but none answered expert.info with a width-in, width-out schema.");
        var wanted = kinds.Where(k => (type is null || k.Type == type) && (width is null || k.Width == width)).ToArray();
        if (wanted.Length == 0)
            return (null, $"The experts of {pattern} in the swarm are {string.Join(", ", kinds.Distinct())}; "
                + $"{(type is null ? "" : $"--expert-type {type} ")}{(width is null ? "" : $"--hidden-dim {width} ")}matches none of them.");
        return (wanted.GroupBy(k => k).OrderByDescending(g => g.Count()).First().Key, null);
    }
}
