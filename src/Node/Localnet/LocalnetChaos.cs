namespace MoEMesh.Node.Localnet;

/// <summary>
/// <c>localnet chaos</c>: stops a share of the running nodes (never the bootstrap node, through which
/// the others join) with SIGKILL or SIGTERM, and, with a restart delay, starts them again with the same
/// configuration, key and checkpoints.
/// </summary>
internal static class LocalnetChaos
{
    public static async Task<LocalnetState> RunAsync(LocalnetState state, string runDir, int count, string signal, TimeSpan? restartAfter, int seed,
        LocalnetProbe probe, TimeSpan limit, TextWriter output, CancellationToken cancellationToken)
    {
        var candidates = state.Nodes.Skip(1).Where(LocalnetProcesses.IsRunning).ToArray();
        if (!state.Nodes.Any(LocalnetProcesses.IsRunning)) throw new LocalnetException($"no testnet is running in {runDir}; `scripts/localnet/up --run-dir {runDir}` starts one.");
        if (candidates.Length == 0) throw new LocalnetException($"no node but the bootstrap node is running in {runDir}; nothing to stop.");
        new Random(seed).Shuffle(candidates);
        var victims = candidates.Take(Math.Min(count, candidates.Length)).OrderBy(n => n.Index).ToArray();
        foreach (var node in victims)
        {
            bool onSignal = await LocalnetProcesses.StopAsync(node, signal, LocalnetProcesses.StopLimit, probe.Time, cancellationToken);
            output.WriteLine($"stopped {node} (pid {node.Pid}, experts {string.Join(", ", node.Experts)}) with SIG{signal}{(onSignal || signal == "KILL" ? "" : $", then SIGKILL after {LocalnetProcesses.StopLimit.TotalSeconds:F0} s")}");
            state = state.With(node with { Pid = null });
            state.Save(runDir);
        }
        if (restartAfter is not { } delay) return state;
        output.WriteLine($"restarting them in {Words.Duration(delay)}");
        await Task.Delay(delay, probe.Time, cancellationToken);
        var until = probe.Time.GetUtcNow() + limit;
        foreach (var node in victims) state = LocalnetUp.Started(state, node, runDir, probe.Time);
        foreach (var node in victims)
        {
            var restarted = state.Nodes[node.Index];
            await probe.ReadyAsync(restarted, until, cancellationToken);
            output.WriteLine($"restarted {node} (pid {restarted.Pid}) with its key and checkpoints");
        }
        await LocalnetUp.AllSeeAllAsync(state, runDir, probe, until, cancellationToken);
        output.WriteLine("every running node finds every expert again");
        return state;
    }
}
