using System.Text.Json;

namespace MoEMesh.IntegrationTests;

/// <summary>The built moemesh binary as three processes on loopback.</summary>
public sealed class ProcessTests : IDisposable
{
    /// <summary>Catches a hang; generous, so a busy machine (processes starting, JIT, a build beside) does not fail a test.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromMinutes(3);
    private readonly string _dir = Directory.CreateTempSubdirectory("moemesh-procs-").FullName;
    private readonly List<NodeProcess> _nodes = [];

    public void Dispose()
    {
        foreach (var n in _nodes) n.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task ThreeNodes_EachSeesEveryExpert_ThenSigtermWritesCheckpointsAndExitsZero()
    {
        string[] Args(string name, params string[] more) =>
        [
            "--key-file", $"{name}.key", "--checkpoint-dir", $"ck-{name}", "--no-tls", "--expert-pattern", "ffn.[0:3].[0:4]", "--num-experts", "2",
            "--hidden-dim", "16", "--update-period", "2", "--checkpoint-period", "3600", .. more,
        ];
        var first = Start(Args("a"));
        await WaitAnnouncedAsync(first);
        var others = new[]
        {
            Start(Args("b", "--peers", $"127.0.0.1:{first.PeerPort}", "--concurrent-batches", "1", "--blas-threads", "1")),
            Start(Args("c", "--peers", $"127.0.0.1:{first.PeerPort}")),
        };
        foreach (var n in others) await WaitAnnouncedAsync(n);

        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(1) };
        var hosted = new Dictionary<NodeProcess, string[]>();
        foreach (var n in _nodes)
        {
            using var status = JsonDocument.Parse(await http.GetStringAsync(new Uri(n.Http, "/v1/status")));
            hosted[n] = status.RootElement.GetProperty("experts").EnumerateArray().Select(e => e.GetProperty("uid").GetString()!).ToArray();
            Assert.Equal(2, hosted[n].Length);
        }
        var all = hosted.Values.SelectMany(u => u).Distinct().ToArray();

        // Every node must find a host for every uid through its own DHT view, within the bound.
        using var limit = new CancellationTokenSource(Bound);
        foreach (var n in _nodes)
            foreach (var uid in all)
                while (!await SeesAsync(http, n, uid))
                    await Task.Delay(100, limit.Token);

        foreach (var n in _nodes) n.Terminate();
        foreach (var n in _nodes)
        {
            Assert.True(await n.WaitForExitAsync(Bound), $"node did not exit after SIGTERM:\n{n.Output}");
            Assert.True(n.ExitCode == 0, $"exit code {n.ExitCode}:\n{n.Output}");
        }
        // Unset, two experts share the cores out; set by hand, the flags are taken as they are.
        int cores = Environment.ProcessorCount, concurrent = Math.Min(2, cores);
        Assert.Contains($"Expert batches: up to {concurrent} at once, {Math.Max(1, cores / concurrent)} GEMM threads each, on {cores} cores", first.Output);
        Assert.Contains($"Expert batches: up to 1 at once, 1 GEMM threads each, on {cores} cores", others[0].Output);
        foreach (var (n, uids) in hosted)
        {
            string name = n == first ? "a" : n == others[0] ? "b" : "c";
            foreach (var uid in uids) Assert.True(File.Exists(Path.Combine(_dir, $"ck-{name}", uid, "checkpoint.json")), $"no checkpoint for {uid} of node {name}");
        }
    }

    [Fact]
    public async Task WithLogFormatJson_EveryLogLineIsAJsonObject_WithLevelCategoryAndMessage()
    {
        var node = NodeProcess.Start(_dir, "--no-tls", "--key-file", "j.key", "--checkpoint-dir", "j-ck", "--model-dir", "j-models", "--expert-uid", "ffn.0.0", "--hidden-dim", "8", "--log-format", "json");
        _nodes.Add(node);
        var announced = await node.Announced.WaitAsync(Bound);
        node.Terminate();
        Assert.True(await node.WaitForExitAsync(Bound), node.Output);
        Assert.Equal(0, node.ExitCode);
        var lines = node.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(announced, lines);
        foreach (var line in lines)
        {
            using var entry = JsonDocument.Parse(line);
            Assert.True(entry.RootElement.TryGetProperty("Timestamp", out _), line);
            Assert.True(entry.RootElement.TryGetProperty("LogLevel", out _), line);
            Assert.True(entry.RootElement.TryGetProperty("Category", out _), line);
            Assert.True(entry.RootElement.TryGetProperty("Message", out _), line);
        }
        Assert.Contains(lines, l => l.Contains("\"Category\":\"MoEMesh.Node.Hosting.MeshNode\"", StringComparison.Ordinal));

        var bad = await CliRun.RunAsync(_dir, Bound, "node", "--log-format", "xml");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("Argument 'xml' not recognized", bad.Error);
    }

    [Fact]
    public async Task ConfigurationWithSeveralMistakes_StopsTheStart_NamingEachOne_BeforeAnythingIsCreated()
    {
        var config = Path.Combine(_dir, "bad.json");
        await File.WriteAllTextAsync(config, """
            { "MoEMesh": { "Dht": { "RpcTimeout": "2.00:00:00" }, "Routing": { "KMin": 0 }, "Protocol": { "MaxConnections": 0 } } }
            """);
        var run = await CliRun.RunAsync(_dir, Bound, "node", "--config", config, "--listen", "127.0.0.1:0");
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains("MoEMesh:Dht:RpcTimeout: must be positive and at most a day (1.00:00:00); got 2.00:00:00.", run.Error);
        Assert.Contains("MoEMesh:Routing:KMin: must be at least 1; got 0.", run.Error);
        Assert.Contains("MoEMesh:Protocol:MaxConnections: must be at least 1; got 0.", run.Error);
        Assert.False(File.Exists(Path.Combine(_dir, "moemesh.key")), "the key file was created before the configuration was checked");
    }

    private NodeProcess Start(string[] args)
    {
        var node = NodeProcess.Start(_dir, args);
        _nodes.Add(node);
        return node;
    }

    private static async Task WaitAnnouncedAsync(NodeProcess node)
    {
        var finished = await Task.WhenAny(node.Announced, Task.Delay(Bound));
        Assert.True(finished == node.Announced, $"the node did not announce its experts:\n{node.Output}");
    }

    private static async Task<bool> SeesAsync(HttpClient http, NodeProcess node, string uid)
    {
        using var hosts = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.Http, $"/v1/experts/{uid}")));
        return hosts.RootElement.GetArrayLength() > 0;
    }
}
