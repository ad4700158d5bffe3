using System.Text.Json;
using System.Text.Json.Nodes;

namespace MoEMesh.Node.Localnet;

/// <summary>
/// How a testnet is laid out: which uids each node hosts (the grid's uids in a seeded order, dealt out
/// in turn, so nodes beyond the grid's size host replicas), and each node's files under the run directory
/// (node-K.json, node-K.key, node-K/checkpoints, node-K/models, node-K.log).
/// </summary>
/// <param name="Nodes">How many nodes; the first is the bootstrap peer.</param>
/// <param name="ExpertsPerNode">Uids each node hosts.</param>
/// <param name="GridRows">Rows of the expert grid (uids ffn.R.C).</param>
/// <param name="GridColumns">Columns of the expert grid.</param>
/// <param name="HiddenDim">Expert width d.</param>
/// <param name="Seed">Seed of the order the grid's uids are dealt out in.</param>
/// <param name="UseTls">Whether the nodes speak TLS to each other.</param>
/// <param name="RunDir">Where the testnet's files live.</param>
/// <param name="Links">With <c>--wan</c>, what each node's link does to its packets; null for a testnet on loopback.</param>
internal sealed record LocalnetLayout(int Nodes, int ExpertsPerNode, int GridRows, int GridColumns, int HiddenDim, int Seed, bool UseTls, string RunDir, Wan.LinkShape? Links = null)
{
    /// <summary>The uids node <paramref name="index"/> hosts.</summary>
    public IReadOnlyList<string> ExpertsOf(int index)
    {
        var uids = Enumerable.Range(0, GridRows * GridColumns).Select(i => $"ffn.{i / GridColumns}.{i % GridColumns}").ToArray();
        new Random(Seed).Shuffle(uids);
        return Enumerable.Range(index * ExpertsPerNode, ExpertsPerNode).Select(i => uids[i % uids.Length]).Distinct().ToArray();
    }

    /// <summary>
    /// The nodes before they start: on 127.0.0.1 with free ports, or each on its own address in
    /// <paramref name="network"/> with a node's default ports (7700, 7780).
    /// </summary>
    public IReadOnlyList<LocalnetNode> NodesOn(Wan.WanNetwork? network)
    {
        if (network is not null)
            return Enumerable.Range(0, Nodes).Select(i => Node(i, 7700, 7780) with { Host = network.AddressOf(i), Namespace = network.NamespaceOf(i) }).ToArray();
        var ports = LocalnetProcesses.FreePorts(2 * Nodes);
        return Enumerable.Range(0, Nodes).Select(i => Node(i, ports[2 * i], ports[2 * i + 1])).ToArray();
    }

    private LocalnetNode Node(int index, int peerPort, int httpPort) =>
        new(index, null, null, peerPort, httpPort, Path.Combine(RunDir, $"node-{index}.json"), Path.Combine(RunDir, $"node-{index}.log"), ExpertsOf(index));

    /// <summary>Writes <paramref name="node"/>'s configuration file; it joins through <paramref name="bootstrap"/> (PEERID@host:port) when given.</summary>
    public void WriteConfig(LocalnetNode node, string? bootstrap)
    {
        string home = Path.Combine(RunDir, $"node-{node.Index}");
        var settings = new JsonObject
        {
            ["KeyFile"] = Path.Combine(RunDir, $"node-{node.Index}.key"),
            ["Listen"] = node.PeerAddress,
            ["HttpListen"] = $"{node.Host}:{node.HttpPort}",
            ["UseTls"] = UseTls,
            ["CheckpointDirectory"] = Path.Combine(home, "checkpoints"),
            ["ModelDirectory"] = Path.Combine(home, "models"),
            ["InitialPeers"] = new JsonArray(bootstrap is null ? [] : [JsonValue.Create(bootstrap)]),
            // A testnet is an open training swarm: every peer may train every expert.
            ["Serving"] = new JsonObject { ["OpenTraining"] = true },
            ["Experts"] = new JsonArray(node.Experts.Select(uid => (JsonNode)new JsonObject { ["Type"] = "ffn", ["Uid"] = uid, ["HiddenDim"] = HiddenDim }).ToArray()),
        };
        File.WriteAllText(node.Config, new JsonObject { ["MoEMesh"] = settings }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }
}
