using System.Globalization;
using System.Text.Json;

using MoEMesh.Testing;

namespace MoEMesh.Benchmarks.Soak;

/// <summary>
/// The soak's testnet: `moemesh node` processes on loopback, each with its own key, checkpoints and models
/// under the run folder, hosting 4 experts of the 4x4 ffn grid (more slots than uids: experts have replicas),
/// open to training, announcing every 5 s and checkpointing every 10 s. Node 0 is the bootstrap node; a node
/// stopped (by SIGKILL or SIGTERM) starts again with the same key and folders.
/// </summary>
internal sealed class SoakNet(string runDir, int basePort) : IDisposable
{
    public static readonly TimeSpan UpdatePeriod = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(2);
    private readonly List<SoakNode> _nodes = [];

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };

    public IReadOnlyList<SoakNode> Nodes => _nodes;

    public string RunDir => runDir;

    public SoakNode Add()
    {
        int i = _nodes.Count;
        var node = new SoakNode(i, basePort + i, basePort + 100 + i);
        _nodes.Add(node);
        return node;
    }

    /// <summary>Starts (or starts again) <paramref name="node"/> and waits until it says it is ready.</summary>
    public async Task StartAsync(SoakNode node)
    {
        string[] args =
        [
            "node", "--listen", $"127.0.0.1:{node.PeerPort}", "--http", $"127.0.0.1:{node.HttpPort}", "--no-tls", "--key-file", $"n{node.Index}.key",
            "--checkpoint-dir", $"ck-n{node.Index}", "--model-dir", $"models-n{node.Index}", "--expert-pattern", "ffn.[0:4].[0:4]", "--num-experts", "4",
            "--hidden-dim", "64", "--open-training", "--update-period", Seconds(UpdatePeriod), "--checkpoint-period", "10",
            .. node.Index == 0 ? Array.Empty<string>() : ["--peers", $"127.0.0.1:{basePort}"],
        ];
        node.Process?.Dispose();
        node.Process = MoEMeshProcess.Start(runDir, args, Path.Combine(runDir, $"n{node.Index}.log"));
        var until = DateTime.UtcNow + Bound;
        while (!(await StatusAsync(node) is { } status && status.RootElement.GetProperty("ready").GetBoolean()))
        {
            if (node.Process.HasExited || DateTime.UtcNow > until)
                throw new InvalidOperationException($"node {node.Index} did not become ready; see {runDir}/n{node.Index}.log");
            await Task.Delay(200);
        }
        node.Up = true;
    }

    /// <summary>The node's /v1/status, or null when it does not answer.</summary>
    public async Task<JsonDocument?> StatusAsync(SoakNode node)
    {
        try
        {
            return JsonDocument.Parse(await Http.GetStringAsync($"http://127.0.0.1:{node.HttpPort}/v1/status"));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Each hosted expert's uid and update count, from the node's status.</summary>
    public async Task<Dictionary<string, long>> UpdatesAsync(SoakNode node)
    {
        using var status = await StatusAsync(node) ?? throw new InvalidOperationException($"node {node.Index} does not answer");
        return status.RootElement.GetProperty("experts").EnumerateArray()
            .ToDictionary(e => e.GetProperty("uid").GetString()!, e => e.GetProperty("weights").GetProperty("version").GetInt64());
    }

    /// <summary>Each checkpointed expert's update count on disk.</summary>
    public Dictionary<string, long> Checkpointed(SoakNode node)
    {
        var folder = Path.Combine(runDir, $"ck-n{node.Index}");
        var saved = new Dictionary<string, long>();
        if (!Directory.Exists(folder)) return saved;
        foreach (var manifest in Directory.EnumerateFiles(folder, "checkpoint.json", SearchOption.AllDirectories))
        {
            using var json = JsonDocument.Parse(File.ReadAllText(manifest));
            saved[json.RootElement.GetProperty("expert").GetString()!] = json.RootElement.GetProperty("update_count").GetInt64();
        }
        return saved;
    }

    /// <summary>Whether <paramref name="asking"/> finds <paramref name="host"/> among the hosts of <paramref name="uid"/>.</summary>
    public async Task<bool> SeesAsync(SoakNode asking, string uid, string host)
    {
        try
        {
            using var hosts = JsonDocument.Parse(await Http.GetStringAsync($"http://127.0.0.1:{asking.HttpPort}/v1/experts/{uid}"));
            return hosts.RootElement.EnumerateArray().Any(h => h.GetProperty("peer_id").GetString() == host);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException)
        {
            return false;
        }
    }

    /// <summary>The node's PeerId, from its status.</summary>
    public async Task<string> PeerIdAsync(SoakNode node)
    {
        using var status = await StatusAsync(node) ?? throw new InvalidOperationException($"node {node.Index} does not answer");
        return status.RootElement.GetProperty("peerId").GetString()!;
    }

    public void Dispose()
    {
        foreach (var n in _nodes.Where(n => n.Process is not null && !n.Process.HasExited)) n.Process!.Terminate();
        foreach (var n in _nodes) n.Process?.Dispose();
        Http.Dispose();
    }

    private static string Seconds(TimeSpan span) => span.TotalSeconds.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One node of the soak's testnet.</summary>
internal sealed class SoakNode(int index, int peerPort, int httpPort)
{
    public int Index { get; } = index;

    public int PeerPort { get; } = peerPort;

    public int HttpPort { get; } = httpPort;

    public MoEMeshProcess? Process { get; set; }

    /// <summary>Whether it is running (false from its stop until it is ready again).</summary>
    public bool Up { get; set; }

    /// <summary>Times it was stopped and started again.</summary>
    public int Restarts { get; set; }

    /// <summary>Resident memory once the soak began (after the reference training).</summary>
    public long StartBytes { get; set; }
}
