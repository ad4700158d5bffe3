namespace MoEMesh.Node.Localnet;

/// <summary><c>localnet status</c>: one line per node, read from its /v1/status.</summary>
internal static class LocalnetStatusView
{
    public static async Task<int> PrintAsync(LocalnetState state, LocalnetProbe probe, TextWriter output, CancellationToken cancellationToken)
    {
        var statuses = await Task.WhenAll(state.Nodes.Select(n => LocalnetProcesses.IsRunning(n) ? probe.StatusAsync(n, cancellationToken) : Task.FromResult<Http.NodeStatus?>(null)));
        if (state.Wan is { } network)
            output.WriteLine($"network {network.Subnet}, every link {network.Links}; {state.Nodes.Count(LocalnetProcesses.IsLinkRunning)} of {state.Nodes.Count} links running");
        output.WriteLine($"{"node",-5} {"pid",-8} {"peer id",-14} {"address",-15} {"peer port",9} {"http port",9} {"experts",7} {"queue",5} {"max p50",7} {"uptime",8}  state");
        int up = 0;
        foreach (var (node, status) in state.Nodes.Zip(statuses))
        {
            string condition = status is not null ? "up" : LocalnetProcesses.IsRunning(node) ? "running, not answering" : "stopped";
            if (status is not null) up++;
            string peerId = (status?.PeerId ?? node.PeerId) is { } id ? Cli.QueryView.Short(id) : "-";
            output.WriteLine($"{node.Index,-5} {(LocalnetProcesses.IsRunning(node) ? node.Pid.ToString() : "-"),-8} {peerId,-14} {node.Host,-15} {node.PeerPort,9} {node.HttpPort,9} "
                + $"{status?.Experts.Count.ToString() ?? "-",7} {status?.Experts.Sum(e => e.QueueDepth).ToString() ?? "-",5} "
                + $"{(status is { Experts.Count: > 0 } ? status.Experts.Max(e => e.LatencyP50Ms).ToString("F2") : "-"),7} {(status is null ? "-" : Words.Duration(TimeSpan.FromSeconds(status.UptimeSeconds))),8}  {condition}");
        }
        output.WriteLine($"{up} of {state.Nodes.Count} nodes up");
        return 0;
    }
}
