using System.Net;
using System.Text;
using System.Text.Json;

namespace MoEMesh.IntegrationTests;

/// <summary>
/// A model's whole life across real processes: `moemesh train` joins a swarm of node processes, trains,
/// publishes and exits; a node that never saw the model answers queries over HTTP with routes, as another
/// process does; `moemesh query`, `eval` and `models` work against it; and the verbs' exit codes on bad input.
/// </summary>
public sealed class ModelLifeTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);
    private readonly string _dir = Directory.CreateTempSubdirectory("moemesh-model-life-").FullName;
    private readonly List<NodeProcess> _nodes = [];

    public void Dispose()
    {
        foreach (var n in _nodes) n.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private NodeProcess Start(string name, bool experts, NodeProcess? join)
    {
        // On a loaded machine a second expert may answer more than the default 200 ms grace after the first;
        // the test compares answers across processes, so every expert gets the whole deadline.
        File.WriteAllText(Path.Combine(_dir, "routing.json"),
            """{"MoEMesh": {"Routing": {"ForwardTimeout": "00:00:20", "DiscoveryTimeout": "00:00:10", "BackwardTimeout": "00:00:20", "GraceAfterKMin": "00:00:20"}}}""");
        string[] args =
        [
            "--config", "routing.json", "--open-training", "--key-file", $"{name}.key", "--checkpoint-dir", $"ck-{name}", "--model-dir", $"models-{name}", "--no-tls", "--update-period", "2",
            .. experts ? new[] { "--expert-pattern", "ffn.[0:2].[0:2]", "--num-experts", "2", "--hidden-dim", "16" } : [],
            .. join is null ? Array.Empty<string>() : ["--peers", $"127.0.0.1:{join.PeerPort}"],
        ];
        var node = NodeProcess.Start(_dir, args);
        _nodes.Add(node);
        return node;
    }

    private static async Task WaitReadyAsync(HttpClient http, NodeProcess node)
    {
        using var limit = new CancellationTokenSource(Bound);
        while (true)
        {
            Assert.False(node.HasExited, $"the node exited:\n{node.Output}");
            try
            {
                // The HTTP port answers while the node still joins and builds its experts: wait until it says it is ready.
                using var status = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.Http, "/v1/status"), limit.Token));
                if (status.RootElement.GetProperty("ready").GetBoolean()) return;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100, limit.Token);
        }
    }

    private Task<CliRun> Cli(params string[] args) => CliRun.RunAsync(_dir, Bound, args);

    /// <summary>The first rows of the shipped training data, as a smaller file (header kept).</summary>
    private string Sample(int rows)
    {
        var path = Path.Combine(_dir, "sample.tsv");
        File.WriteAllLines(path, File.ReadLines(Path.Combine(Testing.RepositoryRoot.Path, "data", "train.tsv")).Take(rows + 1));
        return path;
    }

    private static async Task<JsonElement> QueryAsync(HttpClient http, NodeProcess node, string text)
    {
        using var response = await http.PostAsync(new Uri(node.Http, "/v1/query"), new StringContent(JsonSerializer.Serialize(new { model = "sample", text, top = 60 }), Encoding.UTF8));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        using var document = JsonDocument.Parse(body);
        return document.RootElement.Clone();
    }

    [Fact]
    public async Task TrainedModel_IsPublished_AndOutlivesItsTrainer_AnsweringFromAnyNode()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var a = Start("a", experts: true, null);
        await WaitReadyAsync(http, a);
        var b = Start("b", experts: true, a);
        await WaitReadyAsync(http, b);
        var data = Sample(400);

        var train = await Cli("train", "--peer", $"127.0.0.1:{a.PeerPort}", "--no-tls", "--data", data, "--model", "sample", "--steps", "20", "--batch-size", "16",
            "--grid", "2x2", "--replicas", "2", "--key-file", "publisher.key", "--out", "run");
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains("published sample version", train.Out);
        Assert.True(File.Exists(Path.Combine(_dir, "run", "sample.safetensors")));
        // A header, then a row per step that got an answer: on a loaded machine a step whose experts all answer
        // after the trainer's ForwardTimeout is skipped, and train says how many.
        var skipped = System.Text.RegularExpressions.Regex.Match(train.Out, @", (\d+) steps skipped because no expert answered");
        int answered = 20 - (skipped.Success ? int.Parse(skipped.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0);
        Assert.Contains("trained 20 steps", train.Out);
        Assert.InRange(answered, 1, 20);
        Assert.Equal(1 + answered, File.ReadAllLines(Path.Combine(_dir, "run", "curves.csv")).Length);
        // ... drawn in curves.png, a PNG image.
        Assert.Contains("curves: run/curves.csv, drawn in run/curves.png", train.Out);
        Assert.Equal("\x89PNG", System.Text.Encoding.Latin1.GetString(File.ReadAllBytes(Path.Combine(_dir, "run", "curves.png"))[..4]));
        using (var eval = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "run", "eval.json"))))
            Assert.InRange(eval.RootElement.GetProperty("accuracy").GetDouble(), 0, 1);

        // The trainer has exited; node c joins now, so it never held the model, and fetches it from a holder.
        var c = Start("c", experts: false, a);
        await WaitReadyAsync(http, c);
        const string text = "the county jury said the election was fair";
        var fromC = await QueryAsync(http, c, text);
        var fromA = await QueryAsync(http, a, text);
        var route = fromC.GetProperty("results")[0].GetProperty("route");
        Assert.Equal(2, route.GetArrayLength());
        foreach (var hop in route.EnumerateArray())
        {
            Assert.Equal("ok", hop.GetProperty("outcome").GetString());
            Assert.Matches(@"^ffn\.[01]\.[01]$", hop.GetProperty("expert").GetString());
        }
        // Two other processes, the same weights: the same answer.
        Assert.Equal(fromA.GetProperty("results")[0].GetProperty("probabilities").GetRawText(), fromC.GetProperty("results")[0].GetProperty("probabilities").GetRawText());
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "models-c"), "*.safetensors"));

        var query = await Cli("query", "--peer", $"127.0.0.1:{c.PeerPort}", "--no-tls", "--model", "sample", text);
        Assert.True(query.ExitCode == 0, query.ToString());
        Assert.Contains(fromC.GetProperty("results")[0].GetProperty("label").GetString()!, query.Out);
        var eval2 = await Cli("eval", "--peer", $"127.0.0.1:{c.PeerPort}", "--no-tls", "--model", "sample", "--data", data, "--json");
        Assert.True(eval2.ExitCode == 0, eval2.ToString());
        using (var report = JsonDocument.Parse(eval2.Out))
        {
            Assert.Equal(400, report.RootElement.GetProperty("samples").GetInt32());
            Assert.True(report.RootElement.GetProperty("bytes_per_sample").GetDouble() > 0);
            Assert.Equal(2, report.RootElement.GetProperty("domains").EnumerateObject().Count());
        }
        var models = await Cli("models", "--peer", $"127.0.0.1:{c.PeerPort}", "--no-tls");
        Assert.True(models.ExitCode == 0, models.ToString());
        Assert.Contains("sample", models.Out);
        Assert.Contains("2 of 2 hold the newest", models.Out);
    }

    [Fact]
    public async Task Training_ServesItsMetrics_AndStoppedBySigterm_SavesAndPublishesWhatItTrained()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var a = Start("a", experts: true, null);
        await WaitReadyAsync(http, a);
        var data = Sample(200);
        // Far more steps than the test waits for; it stops the trainer after its first progress line.
        using var trainer = NodeProcess.StartVerb(_dir, "train", "--peer", $"127.0.0.1:{a.PeerPort}", "--no-tls", "--data", data, "--model", "stopped",
            "--steps", "1000000", "--grid", "2x2", "--replicas", "1", "--key-file", "publisher.key", "--out", "run", "--metrics", "127.0.0.1:0");
        var until = DateTime.UtcNow + Bound;
        // The first progress line: "step 1/1000000", or a later step when a busy machine made the first ones miss their deadline (skipped, not reported).
        while (!trainer.Output.Contains("/1000000  loss", StringComparison.Ordinal))
        {
            Assert.False(trainer.HasExited, trainer.Output);
            Assert.True(DateTime.UtcNow < until, $"no step within {Bound}:\n{trainer.Output}");
            await Task.Delay(100);
        }
        // While it trains, its metrics: the steps taken (at least the one reported) and the expert calls they made.
        var metricsAt = System.Text.RegularExpressions.Regex.Match(trainer.Output, @"metrics: (http://\S+/metrics)");
        Assert.True(metricsAt.Success, trainer.Output);
        var metrics = await http.GetStringAsync(metricsAt.Groups[1].Value);
        // A series not there reads 0, and the assertion shows the whole text.
        double Value(string series) => metrics.Split('\n').Where(l => l.StartsWith(series + " ", StringComparison.Ordinal))
            .Select(l => double.Parse(l.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Single();
        Assert.True(Value("moemesh_routing_training_steps{outcome=\"ok\"}") >= 1, metrics);
        Assert.True(Value("moemesh_routing_training_loss_count") >= 1, metrics);
        // A step that was reported got an answer for some text: a forward call that ended ok (its backward may have missed its deadline on a busy machine).
        Assert.True(Value("moemesh_routing_expert_calls{direction=\"forward\",hedged=\"false\",outcome=\"ok\"}")
            + Value("moemesh_routing_expert_calls{direction=\"forward\",hedged=\"true\",outcome=\"ok\"}") >= 1, metrics);
        Assert.True(Value("moemesh_peer_bytes{direction=\"sent\",side=\"client\"}") > 0, metrics);
        trainer.Terminate();
        Assert.True(await trainer.WaitForExitAsync(Bound), $"the trainer did not stop:\n{trainer.Output}");
        Assert.True(trainer.ExitCode == 0, $"exit {trainer.ExitCode}:\n{trainer.Output}");
        Assert.Contains("stopped early", trainer.Output);
        Assert.Contains("published stopped version", trainer.Output);
        using var saved = Tensors.Serialization.SafeTensorsFile.ReadFile(Path.Combine(_dir, "run", "stopped.safetensors"));
        using var training = JsonDocument.Parse(saved.Metadata["training"]);
        Assert.True(training.RootElement.GetProperty("stopped").GetBoolean());
        Assert.InRange(training.RootElement.GetProperty("steps").GetInt64(), 1, 999_999);
    }

    [Fact]
    public async Task Verbs_OnBadInput_ExitWithTheirCode_AndSayWhatIsWrong()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var a = Start("a", experts: true, null);
        await WaitReadyAsync(http, a);
        var peer = $"127.0.0.1:{a.PeerPort}";
        var good = Sample(50);
        File.WriteAllText(Path.Combine(_dir, "empty.csv"), "");
        File.WriteAllText(Path.Combine(_dir, "nolabels.csv"), "text,label\nhello,\n,x\n");
        File.WriteAllText(Path.Combine(_dir, "columns.csv"), "body,label\nhello,x\n");

        (string[] Args, int Exit, string Said)[] cases =
        [
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", "missing.tsv"], 2, "missing.tsv: cannot be read"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", "empty.csv"], 2, "the file is empty"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", "nolabels.csv"], 2, "no usable row (2 skipped; the first, line 2: it has no label)"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", "columns.csv"], 2, "no column 'text' (--text-column)"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--format", "xml"], 2, "'xml' is not a data format"),
            (["train", "--peer", peer, "--no-tls", "--model", "bad/name", "--data", good], 2, "not a model name"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--grid", "4by4"], 2, "--grid: '4by4'"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--epochs", "2", "--steps", "5"], 2, "give one of them"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--compression", "zip"], 2, "--compression: must be one of none, fp16, bf16, 8bit"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--batch-size", "0"], 2, "--batch-size: must be between 1 and 4096; got 0."),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--metrics", "9464"], 2, "--metrics: '9464' is not HOST:PORT to listen on"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--metrics", $"127.0.0.1:{a.HttpPort}"], 2, $"--metrics: 127.0.0.1:{a.HttpPort} is already in use"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--grid-name", "absent"], 3, "hosts no expert of the grid absent.[0:4].[0:4]"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--grid", "2x2", "--hidden-dim", "32"], 3, "--hidden-dim 32 matches none"),
            (["train", "--peer", "127.0.0.1:1", "--no-tls", "--model", "m", "--data", good], 3, "Could not join the DHT"),
            (["query", "--peer", peer, "--no-tls", "--model", "m"], 2, "no text to query"),
            (["query", "--peer", peer, "--no-tls", "--model", "absent", "hello"], 3, "No peer holds a model called 'absent'"),
            (["query", "--peer", peer, "--no-tls", "--model", "m", "--file", "missing.txt"], 2, "missing.txt cannot be read"),
            (["eval", "--peer", peer, "--no-tls", "--model", "absent", "--data", good], 3, "No peer holds a model called 'absent'"),
            (["eval", "--peer", peer, "--no-tls", "--model", "m", "--data", "missing.tsv"], 2, "--data: missing.tsv does not exist"),
            (["query", "--peer", peer, "--no-tls", "--model", "m", "--timeout", "-1", "hello"], 2, "--timeout must be above 0"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--epoch", "2"], 2, "Unrecognized command or argument '--epoch'"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--k", "0"], 2, "--k must be between 1 and 64"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--freeze-trunk"], 2, "--freeze-trunk keeps a trunk taken from another model: give --trunk-from with it."),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--trunk-from", "missing.safetensors"], 2, "--trunk-from: missing.safetensors: "),
            (["train", "--peer", peer, "--no-tls", "--model", "m2", "--data", good, "--trunk-from", "absent"], 3, "No peer holds a model called 'absent'"),
            (["train", "--peer", peer, "--no-tls", "--model", "m", "--data", good, "--epochs", "x"], 2, "--epochs: 'x' is not a whole number."),
            (["dht", "put", "k", "v", "--peer", peer, "--no-tls", "--ttl", "-5"], 2, "--ttl must be above 0 and at most 3600 seconds (nodes keep a value at most an hour); got -5."),
            (["dht", "put", "k", "v", "--peer", peer, "--no-tls", "--ttl", "7200"], 2, "--ttl must be above 0 and at most 3600 seconds"),
            (["dht", "put", "k", "v", "--peer", peer, "--no-tls", "--timeout", "0"], 2, "--timeout must be above 0"),
            (["dht", "put", "k", "v", "--peer", peer, "--no-tls"], 0, "stored on 1 of the 5 nodes wanted: only 1 node is known near the key"),
        ];
        foreach (var (args, exit, said) in cases)
        {
            var run = await Cli(args);
            Assert.True(run.ExitCode == exit && (run.Error + run.Out).Contains(said, StringComparison.Ordinal),
                $"moemesh {string.Join(' ', args)}: expected exit {exit} saying \"{said}\"; got {run}");
            Assert.DoesNotContain("   at ", run.Error);
            Assert.True(run.Out.Trim().Split('\n').Length <= 1 || exit != 0 || args[0] != "dht", $"dht put printed more than one line: {run}");
        }
    }
}
