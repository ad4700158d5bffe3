using MoEMesh.Node.Cli;
using MoEMesh.Node.Queries;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Node.Localnet;

/// <summary>
/// <c>localnet demo</c>: a testnet of 8 nodes (16 experts, each on two nodes), a model trained on the
/// shipped data against it, queries to different nodes with the routes they took, a quarter of the nodes
/// killed, the same queries again (replicas and fallback at work), a few lines on what happened, and the
/// testnet stopped.
/// </summary>
internal static class LocalnetDemo
{
    private const string Model = "demo";

    private static readonly string[] Texts =
    [
        "The jury praised the way the election was run",
        "a small furry animal with long ears",
        "the ship sailed through the storm at night",
        "a feeling of deep sadness after a loss",
    ];

    public static async Task<int> RunAsync(string runDir, string trainData, string testData, int? steps, TimeSpan limit, LocalnetProbe probe, TextWriter output, CancellationToken cancellationToken)
    {
        foreach (var file in (string[])[trainData, testData])
            if (!File.Exists(file)) throw new LocalnetException($"{file} does not exist; run the demo from the repository (scripts/localnet/demo) or give --data and --eval-data.");
        var layout = new LocalnetLayout(Nodes: 8, ExpertsPerNode: 4, GridRows: 4, GridColumns: 4, HiddenDim: 64, Seed: 1, UseTls: true, runDir);
        Step(output, "1/5", "start a testnet of 8 nodes: 16 experts of the grid ffn 4x4, each hosted on two nodes");
        try
        {
            var state = await LocalnetUp.RunAsync(layout, probe, limit, output, cancellationToken);
            var bootstrap = state.Nodes[0];
            Step(output, "2/5", "train a model on the shipped data against the swarm's experts, and publish it");
            int trained = await MoEMeshCommand.RunAsync(["train", "--peer", $"{bootstrap.PeerId}@{bootstrap.PeerAddress}", "--data", trainData, "--eval-data", testData,
                "--model", Model, "--hidden-dim", "64", .. (steps is { } n ? ["--steps", n.ToString(System.Globalization.CultureInfo.InvariantCulture)] : (string[])["--epochs", "2"]),
                "--key-file", Path.Combine(runDir, "publisher.key"), "--out", Path.Combine(runDir, Model)]);
            if (trained != 0) return trained;

            Step(output, "3/5", "ask four different nodes; each runs the model's gate and calls the experts across the swarm");
            var before = await AskAsync(state.Nodes.Skip(1).Take(Texts.Length).ToArray(), limit, output, cancellationToken);

            Step(output, "4/5", "kill a quarter of the nodes (SIGKILL), then ask the nodes still up the same texts");
            state = await LocalnetChaos.RunAsync(state, runDir, count: 2, "KILL", restartAfter: null, seed: 1, probe, limit, output, cancellationToken);
            var after = await AskAsync(state.Nodes.Skip(1).Where(n => n.Pid is not null).Take(Texts.Length).ToArray(), limit, output, cancellationToken);

            Step(output, "5/5", "what happened");
            Summarize(before, after, state, output);
            return before.Concat(after).All(r => r is not null) ? 0 : 1;
        }
        finally
        {
            await LocalnetDown.RunAsync(runDir, probe.Time, output, CancellationToken.None);
        }
    }

    private static void Step(TextWriter output, string number, string what)
    {
        output.WriteLine();
        output.WriteLine($"== {number} {what}");
    }

    /// <summary>Asks text i of node i; prints each answer and returns each text's route (null when it was not answered).</summary>
    private static async Task<List<IReadOnlyList<QueryHop>?>> AskAsync(IReadOnlyList<LocalnetNode> nodes, TimeSpan limit, TextWriter output, CancellationToken cancellationToken)
    {
        var routes = new List<IReadOnlyList<QueryHop>?>();
        await using var client = new PeerClient(useTls: true);
        for (int i = 0; i < Texts.Length; i++)
        {
            var node = nodes[i % nodes.Count];
            var asked = await ModelQueryClient.AskAsync(client, new PeerEndpoint(Protocol.Addressing.PeerAddress.Parse(node.PeerAddress)), Model, [Texts[i]], 3, limit, cancellationToken);
            output.WriteLine();
            output.Write($"asked {node}:");
            if (asked.Answer is not { } answer)
            {
                output.WriteLine($" no answer: {asked.Error}");
                routes.Add(null);
                continue;
            }
            QueryView.Print(output, Texts[i], answer.Results[0]);
            routes.Add(answer.Results[0].Route);
        }
        return routes;
    }

    private static void Summarize(List<IReadOnlyList<QueryHop>?> before, List<IReadOnlyList<QueryHop>?> after, LocalnetState state, TextWriter output)
    {
        var nodeOf = state.Nodes.Where(n => n.PeerId is not null).ToDictionary(n => n.PeerId!, n => n);
        string Name(string host) => nodeOf.TryGetValue(host, out var node) ? $"{node}{(node.Pid is null ? " (killed)" : "")}" : QueryView.Short(host);
        string Tally(IEnumerable<QueryHop> hops) => string.Join(", ", hops.GroupBy(h => h.Outcome).OrderByDescending(g => g.Count()).Select(g => $"{g.Count()} {g.Key}"));
        var killed = state.Nodes.Where(n => n.Pid is null).ToArray();
        output.WriteLine($"before: {before.Count(r => r is not null)} of {Texts.Length} texts answered; expert calls {Tally(before.SelectMany(r => r ?? []))}, by {string.Join(", ", before.SelectMany(r => r ?? []).Select(h => Name(h.Host)).Distinct().Order())}");
        output.WriteLine($"killed: {string.Join(" and ", killed.Select(n => n.ToString()))}, hosting {string.Join(", ", killed.SelectMany(n => n.Experts).Order())}");
        output.WriteLine($"after:  {after.Count(r => r is not null)} of {Texts.Length} texts answered; expert calls {Tally(after.SelectMany(r => r ?? []))}");
        var moved = before.Zip(after).SelectMany(p => (p.First ?? []).Join(p.Second ?? [], h => h.Expert, h => h.Expert, (b, a) => (b.Expert, From: b.Host, To: a.Host)))
            .Where(m => m.From != m.To).Distinct().ToArray();
        foreach (var (expert, from, to) in moved) output.WriteLine($"        {expert}: answered by {Name(from)} before, by {Name(to)} after");
        output.WriteLine("A gating node orders an expert's hosts healthy first, skips one that does not answer, calls the next, and");
        output.WriteLine("falls back to its own experts when none answers in time. Replicas here are separate experts of the same");
        output.WriteLine("uid, each trained by the calls it got, so an answer may change when a replica takes over.");
    }
}
