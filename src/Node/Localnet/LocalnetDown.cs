namespace MoEMesh.Node.Localnet;

/// <summary><c>localnet down</c>: SIGTERM to exactly the processes <c>up</c> and <c>chaos</c> started (they drain and write checkpoints); idempotent.</summary>
internal static class LocalnetDown
{
    public static async Task<int> RunAsync(string runDir, TimeProvider time, TextWriter output, CancellationToken cancellationToken)
    {
        if (LocalnetState.Load(runDir) is not { } state)
        {
            output.WriteLine($"no testnet was started in {runDir}; nothing to stop");
            return 0;
        }
        var running = state.Nodes.Where(LocalnetProcesses.IsRunning).ToArray();
        var stops = running.Select(async n =>
        {
            try
            {
                return (Node: n, Problem: await LocalnetProcesses.StopAsync(n, "TERM", LocalnetProcesses.StopLimit, time, cancellationToken)
                    ? null : $"did not stop within {LocalnetProcesses.StopLimit.TotalSeconds:F0} s of SIGTERM and was killed; its log: {n.Log}");
            }
            catch (LocalnetException e)
            {
                return (Node: n, Problem: (string?)e.Message);
            }
        }).ToArray();
        foreach (var (node, problem) in await Task.WhenAll(stops))
        {
            if (problem is not null) output.WriteLine($"{node} (pid {node.Pid}): {problem}");
            if (!LocalnetProcesses.IsRunning(node)) state = state.With(node with { Pid = null });
        }
        state.Save(runDir);
        output.WriteLine(running.Length == 0
            ? $"nothing is running in {runDir}"
            : $"stopped {running.Length} node{(running.Length == 1 ? "" : "s")} (pids {string.Join(", ", running.Select(n => n.Pid))}); keys, checkpoints and logs stay in {runDir}");
        if (state.Wan is { } network) await RemoveNetworkAsync(state, network, runDir, time, output, cancellationToken);
        return 0;
    }

    /// <summary>Stops the links of a <c>--wan</c> testnet and removes its namespaces (once no node runs in them).</summary>
    private static async Task RemoveNetworkAsync(LocalnetState state, Wan.WanNetwork network, string runDir, TimeProvider time, TextWriter output, CancellationToken cancellationToken)
    {
        if (state.Nodes.Any(LocalnetProcesses.IsRunning))
        {
            output.WriteLine($"network {network.Subnet} stays: nodes still run in it");
            return;
        }
        foreach (var node in state.Nodes.Where(LocalnetProcesses.IsLinkRunning)) await LocalnetProcesses.StopLinkAsync(node, time, cancellationToken);
        bool existed = network.Remove(state.Nodes.Count);
        // Forgotten once removed: the subnet may go to another testnet, which a later `down` here must not touch.
        (state with { Wan = null, Nodes = state.Nodes.Select(n => n with { LinkPid = null }).ToArray() }).Save(runDir);
        if (existed) output.WriteLine($"removed network {network.Subnet} and its {state.Nodes.Count + 1} namespaces");
    }
}
