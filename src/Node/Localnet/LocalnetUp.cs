namespace MoEMesh.Node.Localnet;

/// <summary>
/// <c>localnet up</c>: starts the bootstrap node, then the others joining through it, and returns once
/// every node finds every hosted expert in the DHT. The state is saved after each start, so <c>down</c>
/// stops whatever was started even when <c>up</c> fails half way.
/// </summary>
internal static class LocalnetUp
{
    public static async Task<LocalnetState> RunAsync(LocalnetLayout layout, LocalnetProbe probe, TimeSpan limit, TextWriter output, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(layout.RunDir);
        if (LocalnetState.Load(layout.RunDir) is { } earlier)
        {
            int running = earlier.Nodes.Count(LocalnetProcesses.IsRunning);
            bool networked = earlier.Wan?.Exists() == true;
            if (running > 0 || networked)
                throw new LocalnetException($"a testnet is already up in {layout.RunDir} ({running} nodes running{(networked ? $", network {earlier.Wan!.Subnet}" : "")}); "
                    + $"`scripts/localnet/down --run-dir {layout.RunDir}` stops it first.");
        }
        var network = layout.Links is { } links ? Wan.WanNetwork.Claim(links) : null;
        // Saved at once, so that `down` removes a claimed network even when what follows fails.
        var state = new LocalnetState(layout.UseTls, layout.NodesOn(network), network);
        state.Save(layout.RunDir);
        var until = probe.Time.GetUtcNow() + limit;
        if (network is not null)
        {
            BuildOrRemove(network, state, layout.RunDir);
            state = await LinksStartedAsync(state, layout.RunDir, until, probe.Time, cancellationToken);
            output.WriteLine($"network {network.Subnet} in namespaces {network.NamespaceOf(0)} to {network.NamespaceOf(layout.Nodes - 1)}; every link {network.Links}");
        }

        var bootstrap = state.Nodes[0];
        layout.WriteConfig(bootstrap, null);
        state = Started(state, bootstrap, layout.RunDir, probe.Time);
        bootstrap = state.Nodes[0];
        var first = await probe.ReadyAsync(bootstrap, until, cancellationToken);
        state = state.With(bootstrap with { PeerId = first.PeerId });
        state.Save(layout.RunDir);
        output.WriteLine($"node 0 (bootstrap) is up: {first.PeerId}@{bootstrap.PeerAddress}, HTTP {bootstrap.Http}");

        string joinThrough = $"{first.PeerId}@{bootstrap.PeerAddress}";
        foreach (var node in state.Nodes.Skip(1))
        {
            layout.WriteConfig(node, joinThrough);
            state = Started(state, node, layout.RunDir, probe.Time);
        }
        foreach (var node in state.Nodes.Skip(1))
        {
            var status = await probe.ReadyAsync(node, until, cancellationToken);
            state = state.With(node with { PeerId = status.PeerId });
        }
        state.Save(layout.RunDir);
        output.WriteLine($"{layout.Nodes} nodes answer; waiting until each finds every expert in the DHT");
        await AllSeeAllAsync(state, layout.RunDir, probe, until, cancellationToken);
        return state;
    }

    /// <summary>Waits until every running node finds every expert the testnet's running nodes host; throws naming what is missing when <paramref name="until"/> passes.</summary>
    public static async Task AllSeeAllAsync(LocalnetState state, string runDir, LocalnetProbe probe, DateTimeOffset until, CancellationToken cancellationToken)
    {
        var running = state.Nodes.Where(LocalnetProcesses.IsRunning).ToArray();
        var hostOf = running.SelectMany(n => n.Experts.Select(uid => (uid, n))).GroupBy(x => x.uid).ToDictionary(g => g.Key, g => g.First().n);
        var missing = running.SelectMany(n => hostOf.Keys.Select(uid => (Node: n, Uid: uid))).ToList();
        while (true)
        {
            // A few lookups at a time: hundreds at once on two cores time out and are asked again.
            using var slots = new SemaphoreSlim(8);
            var seen = await Task.WhenAll(missing.Select(async m =>
            {
                await slots.WaitAsync(cancellationToken);
                try
                {
                    return await probe.SeesAsync(m.Node, m.Uid, cancellationToken);
                }
                finally
                {
                    slots.Release();
                }
            }));
            missing = missing.Where((_, i) => !seen[i]).ToList();
            if (missing.Count == 0) return;
            if (probe.Time.GetUtcNow() >= until)
            {
                var named = missing.Take(5).Select(m => $"{m.Node} does not find {m.Uid} (hosted by {hostOf[m.Uid]})");
                throw new LocalnetException($"not every node finds every expert: {string.Join("; ", named)}{(missing.Count > 5 ? $"; and {missing.Count - 5} more" : "")}. "
                    + $"The nodes are still running (`scripts/localnet/status --run-dir {runDir}`, logs there; `scripts/localnet/down --run-dir {runDir}` stops them).", 3);
            }
            await Task.Delay(TimeSpan.FromMilliseconds(500), probe.Time, cancellationToken);
        }
    }

    /// <summary>Builds <paramref name="network"/>; when that fails, removes what was made (and the record of it) before saying why.</summary>
    private static void BuildOrRemove(Wan.WanNetwork network, LocalnetState state, string runDir)
    {
        try
        {
            network.Build(state.Nodes.Count);
        }
        catch (LocalnetException)
        {
            try
            {
                network.Remove(state.Nodes.Count);
                (state with { Wan = null }).Save(runDir);
            }
            catch (LocalnetException)
            {
                // What could not be removed stays recorded, for `down`; the first failure is the one to tell.
            }
            throw;
        }
    }

    /// <summary>
    /// Starts each node's link in its namespace, records their pids (saved at once), and waits until each
    /// has bound its queue (its log's first line names its shape): until then the node's packets would be dropped.
    /// </summary>
    private static async Task<LocalnetState> LinksStartedAsync(LocalnetState state, string runDir, DateTimeOffset until, TimeProvider time, CancellationToken cancellationToken)
    {
        foreach (var node in state.Nodes)
        {
            File.Delete(node.LinkLog); // its first line tells that it started
            state = state.With(node with { LinkPid = LocalnetProcesses.StartLink(node, state.Wan!.Links, runDir, time) });
            state.Save(runDir);
        }
        foreach (var node in state.Nodes)
        {
            while (!(LocalnetProbe.FirstLine(node.LinkLog) ?? "").StartsWith($"link of {node.Namespace}:", StringComparison.Ordinal) || !LocalnetProcesses.IsLinkRunning(node))
            {
                if (!LocalnetProcesses.IsLinkRunning(node) || time.GetUtcNow() >= until)
                    throw new LocalnetException($"the link of {node} did not start: {LocalnetProbe.LastLine(node.LinkLog)} (log: {node.LinkLog}); "
                        + $"`scripts/localnet/down --run-dir {runDir}` removes the network.", 3);
                await Task.Delay(TimeSpan.FromMilliseconds(50), time, cancellationToken);
            }
        }
        return state;
    }

    /// <summary>Starts <paramref name="node"/> and records its pid (saved at once).</summary>
    public static LocalnetState Started(LocalnetState state, LocalnetNode node, string runDir, TimeProvider time)
    {
        Directory.CreateDirectory(Path.Combine(runDir, $"node-{node.Index}"));
        var next = state.With(node with { Pid = LocalnetProcesses.Start(node, runDir, time) });
        next.Save(runDir);
        return next;
    }
}
