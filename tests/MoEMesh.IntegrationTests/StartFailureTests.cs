using System.Net;
using System.Net.Sockets;

namespace MoEMesh.IntegrationTests;

/// <summary>A node that cannot start says why in one line naming the setting, with no stack trace, and exits 2 (bad input) or 3 (no peer answered).</summary>
public sealed class StartFailureTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);
    private readonly string _dir = Directory.CreateTempSubdirectory("moemesh-start-").FullName;
    private readonly Socket _taken = new(SocketType.Stream, ProtocolType.Tcp);

    public StartFailureTests()
    {
        _taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _taken.Listen();
        File.WriteAllText(Path.Combine(_dir, "broken.json"), """{ "MoEMesh": { "Listen": """);
    }

    private int Taken => ((IPEndPoint)_taken.LocalEndPoint!).Port;

    public void Dispose()
    {
        _taken.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    public static TheoryData<string, int, string> Cases() => new()
    {
        { "listen-taken", 2, "Invalid configuration: --listen: 127.0.0.1:{taken} is already in use (another node or program listens there); choose another port." },
        { "http-taken", 2, "Invalid configuration: --http: 127.0.0.1:{taken} is already in use (another node or program listens there); choose another port." },
        { "not-here", 2, "Invalid configuration: --listen: 10.255.255.1:7000 is not an address of this machine" },
        { "type", 2, "Invalid configuration: --expert-type: 'nope' is not an expert type this node knows (ffn, identity, mlp)." },
        { "json", 2, "--config: broken.json is not valid JSON:" },
        { "fraction", 2, "--num-experts: '2.5' is not a whole number." },
        { "unknown", 2, "MoEMesh:Listn: there is no such setting" },
        { "no-peer", 3, "Could not join the DHT: the initial peer did not answer after 4 attempts." },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AFailedStart_IsOneClearLine(string which, int exitCode, string expected)
    {
        string[] common = ["node", "--key-file", "node.key", "--checkpoint-dir", "ck", "--model-dir", "models"];
        string[] args = which switch
        {
            "listen-taken" => ["--listen", $"127.0.0.1:{Taken}", "--http", "127.0.0.1:0"],
            "http-taken" => ["--listen", "127.0.0.1:0", "--http", $"127.0.0.1:{Taken}"],
            "not-here" => ["--listen", "10.255.255.1:7000", "--http", "127.0.0.1:0"],
            "type" => ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--expert-type", "nope", "--expert-uid", "ffn.0"],
            "json" => ["--config", "broken.json"],
            "fraction" => ["--num-experts", "2.5"],
            "unknown" => ["--config", WriteConfig("""{ "MoEMesh": { "Listn": "127.0.0.1:1" } }""")],
            "no-peer" => ["--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--peers", "127.0.0.1:1"],
            _ => throw new ArgumentException(which),
        };
        var run = await CliRun.RunAsync(_dir, Bound, [.. common, .. args]);
        Assert.True(run.ExitCode == exitCode, run.ToString());
        Assert.Contains(expected.Replace("{taken}", Taken.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal), run.Error);
        Assert.DoesNotContain("   at ", run.Out + run.Error);
        Assert.DoesNotContain("Exception", run.Out + run.Error);
        if (which is "type" or "json" or "fraction" or "unknown")
            Assert.False(File.Exists(Path.Combine(_dir, "node.key")), "the key file was created before the problem was found");
    }

    [Fact]
    public async Task ANodeWhoseHttpPortIsTaken_NeverJoinsOrAnnounces()
    {
        using var seed = NodeProcess.Start(_dir, "--key-file", "seed.key", "--checkpoint-dir", "ck-seed", "--model-dir", "m-seed", "--no-tls");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        var until = DateTime.UtcNow + Bound;
        while (!await AnswersAsync(http, seed)) Assert.True(DateTime.UtcNow < until, $"the seed node did not come up:\n{seed.Output}");

        var run = await CliRun.RunAsync(_dir, Bound, "node", "--listen", "127.0.0.1:0", "--http", $"127.0.0.1:{Taken}", "--peers", $"127.0.0.1:{seed.PeerPort}", "--no-tls",
            "--key-file", "late.key", "--checkpoint-dir", "ck-late", "--model-dir", "m-late", "--expert-uid", "ffn.7.7", "--hidden-dim", "8");
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Equal("[]", (await http.GetStringAsync(new Uri(seed.Http, "/v1/experts/ffn.7.7"))).Trim());
        Assert.Contains("\"routingTableSize\": 0", await http.GetStringAsync(new Uri(seed.Http, "/v1/status")));
    }

    [Fact]
    public async Task ACheckpointThatCannotBeWrittenAtStop_EndsTheNodeWithExit1_NamingTheExpert()
    {
        using var node = NodeProcess.Start(_dir, "--key-file", "stop.key", "--checkpoint-dir", "ck-stop", "--model-dir", "m-stop", "--no-tls",
            "--expert-uid", "ffn.3.3", "--hidden-dim", "8");
        var announced = await Task.WhenAny(node.Announced, Task.Delay(Bound));
        Assert.True(announced == node.Announced, $"the node did not announce:\n{node.Output}");
        var folder = Path.Combine(_dir, "ck-stop", "ffn.3.3");
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        await File.WriteAllTextAsync(folder, "a file where the expert's folder goes");
        node.Terminate();
        Assert.True(await node.WaitForExitAsync(Bound), node.Output);
        Assert.True(node.ExitCode == 1, $"exit {node.ExitCode}:\n{node.Output}");
        Assert.Contains("The checkpoints of ffn.3.3 could not be written: their training since the last checkpoint is lost", node.Output);
        Assert.DoesNotContain("Stopped; checkpoints of", node.Output);
        Assert.DoesNotContain("   at ", node.Output);
    }

    private static async Task<bool> AnswersAsync(HttpClient http, NodeProcess node)
    {
        try
        {
            if ((await http.GetStringAsync(new Uri(node.Http, "/v1/status"))).Contains("\"ready\": true", StringComparison.Ordinal)) return true;
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            // not up yet
        }
        await Task.Delay(200);
        return false;
    }

    private string WriteConfig(string json)
    {
        var path = Path.Combine(_dir, $"config-{Guid.NewGuid():N}.json");
        File.WriteAllText(path, json);
        return path;
    }
}
