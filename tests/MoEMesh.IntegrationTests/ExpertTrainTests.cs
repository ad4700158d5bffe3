using System.Text.Json;

namespace MoEMesh.IntegrationTests;

/// <summary><c>moemesh expert train</c>: a contributor's expert, trained on one domain, served by a node as it is.</summary>
public sealed class ExpertTrainTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);
    private readonly string _dir = Directory.CreateTempSubdirectory("moemesh-expert-train-").FullName;
    private static string TrainData => Path.Combine(Testing.RepositoryRoot.Path, "data", "train.tsv");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Task<CliRun> Cli(params string[] args) => CliRun.RunAsync(_dir, Bound, args);

    [Fact]
    public async Task AnExpertTrainedOnOneDomain_LearnsIt_AndANodeServesItsCheckpoint_AnnouncingDomainAndContributor()
    {
        var train = await Cli("expert", "train", "--uid", "ffn.0.1", "--domain", "wordnet", "--data", TrainData, "--contributor", "alice",
            "--hidden-dim", "16", "--buckets", "4096", "--steps", "150", "--checkpoint-dir", "ck");
        Assert.True(train.ExitCode == 0, train.ToString());
        // Held-out texts of the domain, through the temporary head: far above chance (1 of its 45 labels).
        var accuracy = train.Out.Split('\n').Single(l => l.StartsWith("held-out accuracy ", StringComparison.Ordinal));
        Assert.True(double.Parse(accuracy.Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture) > 10, accuracy);
        Assert.Contains("wrote ck/ffn.0.1 (update 150)", train.Out);
        using (var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "ck", "ffn.0.1", "checkpoint.json"))))
        {
            Assert.Equal("wordnet", manifest.RootElement.GetProperty("origin").GetProperty("domain").GetString());
            Assert.Equal("alice", manifest.RootElement.GetProperty("origin").GetProperty("contributor").GetString());
        }

        using var node = NodeProcess.Start(_dir, "--checkpoint-dir", "ck", "--expert-uid", "ffn.0.1", "--hidden-dim", "16", "--key-file", "node.key", "--model-dir", "models", "--no-tls");
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var until = DateTime.UtcNow + Bound;
        JsonElement host;
        while (true)
        {
            Assert.False(node.HasExited, node.Output);
            Assert.True(DateTime.UtcNow < until, $"the node did not announce ffn.0.1:\n{node.Output}");
            try
            {
                using var hosts = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.Http, "/v1/experts/ffn.0.1")));
                if (hosts.RootElement.GetArrayLength() > 0)
                {
                    host = hosts.RootElement[0].Clone();
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        Assert.Equal(150, host.GetProperty("updates").GetInt64());
        Assert.Equal("wordnet", host.GetProperty("domain").GetString());
        Assert.Equal("alice", host.GetProperty("contributor").GetString());

        node.Terminate();
        Assert.True(await node.WaitForExitAsync(Bound), node.Output);
        // The node's own checkpoint at stop keeps the label; training on goes on from it, for the same domain only.
        var again = await Cli("expert", "train", "--uid", "ffn.0.1", "--domain", "wordnet", "--data", TrainData, "--contributor", "alice",
            "--hidden-dim", "16", "--buckets", "4096", "--steps", "10", "--checkpoint-dir", "ck");
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Contains("continuing ffn.0.1 from its checkpoint in ck/ffn.0.1 (update 150)", again.Out);
        Assert.Contains("wrote ck/ffn.0.1 (update 160)", again.Out);
        var other = await Cli("expert", "train", "--uid", "ffn.0.1", "--domain", "brown", "--data", TrainData, "--hidden-dim", "16", "--buckets", "4096", "--steps", "10", "--checkpoint-dir", "ck");
        Assert.Equal(2, other.ExitCode);
        Assert.Contains("holds ffn.0.1 trained on domain 'wordnet'; give another --uid or --checkpoint-dir for domain 'brown'.", other.Error);
    }

    [Fact]
    public async Task AgainstAPublishedModel_TheExpertLearnsOnItsTrunk_AndMustBeOnItsGrid()
    {
        using var node = NodeProcess.Start(_dir, "--expert-pattern", "ffn.[0:2].[0:2]", "--num-experts", "4", "--hidden-dim", "16", "--open-training",
            "--key-file", "node.key", "--checkpoint-dir", "node-ck", "--model-dir", "models", "--no-tls");
        var peer = $"127.0.0.1:{node.PeerPort}";
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var until = DateTime.UtcNow + Bound;
        while (true)
        {
            Assert.False(node.HasExited, node.Output);
            Assert.True(DateTime.UtcNow < until, $"the node did not become ready:\n{node.Output}");
            try
            {
                using var status = JsonDocument.Parse(await http.GetStringAsync(new Uri(node.Http, "/v1/status")));
                if (status.RootElement.GetProperty("ready").GetBoolean()) break;
            }
            catch (HttpRequestException)
            {
            }
            await Task.Delay(100);
        }
        var publish = await Cli("train", "--peer", peer, "--no-tls", "--data", TrainData, "--model", "base", "--grid", "2x2", "--steps", "20", "--buckets", "4096",
            "--replicas", "1", "--key-file", "publisher.key", "--out", "base");
        Assert.True(publish.ExitCode == 0, publish.ToString());

        var train = await Cli("expert", "train", "--uid", "ffn.1.0", "--domain", "brown", "--data", TrainData, "--contributor", "bob", "--steps", "20",
            "--model", "base", "--peer", peer, "--no-tls", "--checkpoint-dir", "ck");
        Assert.True(train.ExitCode == 0, train.ToString());
        Assert.Contains("against base version ", train.Out);
        Assert.Contains("(4096 x 16), kept as it is", train.Out);
        Assert.Contains("wrote ck/ffn.1.0 (update 20)", train.Out);

        // The same trunk from the model's file; then the gate learns on that trunk, kept as it is, the experts frozen (the model fetched by name).
        var fromFile = await Cli("expert", "train", "--uid", "ffn.0.0", "--domain", "wordnet", "--data", TrainData, "--steps", "5", "--trunk-from", Path.Combine("base", "base.safetensors"), "--checkpoint-dir", "ck");
        Assert.True(fromFile.ExitCode == 0, fromFile.ToString());
        Assert.Contains("(4096 x 16), kept as it is", fromFile.Out);
        var gate = await Cli("train", "--peer", peer, "--no-tls", "--data", TrainData, "--model", "collab", "--grid", "2x2", "--steps", "10", "--trunk-from", "base", "--freeze-trunk",
            "--freeze-experts", "--no-publish", "--key-file", "publisher.key", "--out", "collab");
        Assert.True(gate.ExitCode == 0, gate.ToString());
        Assert.Contains("trunk from base version ", gate.Out);
        Assert.Contains(", kept as it is", gate.Out);
        var narrower = await Cli("train", "--peer", peer, "--no-tls", "--data", TrainData, "--model", "collab", "--grid", "2x2", "--steps", "10", "--trunk-from", "base", "--hidden-dim", "32",
            "--no-publish", "--key-file", "publisher.key", "--out", "collab");
        Assert.Equal(2, narrower.ExitCode);
        Assert.Contains("--hidden-dim 32: the trunk of base has width 16; leave --hidden-dim out to take it.", narrower.Error);

        var offGrid = await Cli("expert", "train", "--uid", "ffn.5.5", "--domain", "brown", "--data", TrainData, "--steps", "5", "--model", "base", "--peer", peer, "--no-tls", "--checkpoint-dir", "ck");
        Assert.Equal(2, offGrid.ExitCode);
        Assert.Contains("--uid ffn.5.5 is not on base's grid ffn 2x2; give one of its uids, such as ffn.0.0.", offGrid.Error);
        var wrongWidth = await Cli("expert", "train", "--uid", "ffn.1.1", "--domain", "brown", "--data", TrainData, "--steps", "5", "--hidden-dim", "32", "--model", "base", "--peer", peer, "--no-tls", "--checkpoint-dir", "ck");
        Assert.Equal(2, wrongWidth.ExitCode);
        Assert.Contains("--hidden-dim 32: base's trunk has width 16; leave --hidden-dim out to take it.", wrongWidth.Error);
    }

    [Theory]
    [InlineData(new[] { "--uid", "ffn.0.1", "--domain", "mail" }, "has no row of domain 'mail'; its domains are brown, wordnet.")]
    [InlineData(new[] { "--uid", "ffn..1", "--domain", "wordnet" }, "--uid: ")]
    [InlineData(new[] { "--uid", "ffn.0.1", "--domain", "wordnet", "--type", "identity" }, "--type must be ffn or mlp (the types that learn); got 'identity'.")]
    [InlineData(new[] { "--uid", "ffn.0.1", "--domain", "wordnet", "--model", "genre" }, "--model needs --peer: the node to fetch the model through.")]
    [InlineData(new[] { "--uid", "ffn.0.1", "--domain", "wordnet", "--steps", "0" }, "--steps: ")]
    [InlineData(new[] { "--uid", "ffn.0.1", "--domain", "wordnet", "--eval-split", "1" }, "--eval-split must be at least 0 and below 1; got 1.")]
    public async Task BadInput_IsOneLine_AndExits2_WritingNothing(string[] args, string message)
    {
        var run = await Cli(["expert", "train", "--data", TrainData, "--checkpoint-dir", "ck", "--key-file", "k.key", .. args]);
        Assert.True(run.ExitCode == 2, run.ToString());
        Assert.Contains(message, run.Error);
        Assert.Single(run.Error.Trim().Split('\n'));
        Assert.False(Directory.Exists(Path.Combine(_dir, "ck")));
    }
}
