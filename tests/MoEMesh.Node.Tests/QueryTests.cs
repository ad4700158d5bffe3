using System.Net;
using System.Text;
using System.Text.Json;
using MoEMesh.Node.Queries;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Tests;

/// <summary>
/// POST /v1/query over real sockets: a node that never saw the model fetches it from its holder and answers
/// with routes naming real experts and hosts, as the model computes in process; and every error status.
/// </summary>
public sealed class QueryTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    /// <summary>Two expert hosts (ffn.0.* and ffn.1.*, d = 8), a holder of the model "genre", and a node that has neither.</summary>
    private async Task<(TestNode A, TestNode B, TestNode Holder, TestNode Asked, ModelWeights Weights)> SwarmAsync(Action<Hosting.NodeOptions>? askedOptions = null)
    {
        var a = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.0.0"), TestNode.Ffn("ffn.0.1")), 41);
        var b = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b"), TestNode.Ffn("ffn.1.0"), TestNode.Ffn("ffn.1.1")), 42, a);
        var models = _folder.Sub("models");
        var weights = TestModels.Write(Path.Combine(models, "genre.safetensors"), "genre", 9);
        var holderOptions = TestNode.Configure(_folder.Sub("h"));
        holderOptions.ModelDirectory = models;
        var holder = await TestNode.StartAsync(holderOptions, 43, a);
        var askedConfig = TestNode.Configure(_folder.Sub("q"));
        // On a loaded machine a second expert may answer more than the default 200 ms grace after the first;
        // these tests compare answers, so every expert gets the whole deadline.
        askedConfig.Routing = new Routing.RoutingOptions
        {
            ForwardTimeout = TimeSpan.FromSeconds(20), DiscoveryTimeout = TimeSpan.FromSeconds(10), BackwardTimeout = TimeSpan.FromSeconds(20), GraceAfterKMin = TimeSpan.FromSeconds(20),
        };
        askedOptions?.Invoke(askedConfig);
        var asked = await TestNode.StartAsync(askedConfig, 44, a);
        return (a, b, holder, asked, weights);
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body)> PostAsync(TestNode node, string body)
    {
        using var http = new HttpClient { BaseAddress = node.Http, Timeout = TimeSpan.FromSeconds(60) };
        using var response = await http.PostAsync("/v1/query", new StringContent(body, Encoding.UTF8, "application/json"));
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return (response.StatusCode, document.RootElement.Clone());
    }

    [Fact]
    public async Task NodeThatNeverSawTheModel_FetchesIt_AndAnswersWithRoutesOverRealExpertsAndHosts_AsTheModelComputesInProcess()
    {
        var (a, b, holder, asked, weights) = await SwarmAsync();
        await using var _ = a;
        await using var __ = b;
        await using var ___ = holder;
        await using var ____ = asked;
        Assert.Empty(asked.Node.HeldModels);

        string[] texts = ["the jury praised the election", "a small animal with long ears", "the jury praised the election again"];
        var (status, body) = await PostAsync(asked, JsonSerializer.Serialize(new { model = "genre", texts, top = 2 }));

        Assert.Equal(HttpStatusCode.OK, status);
        var answer = QueryAnswer.FromJson(Encoding.UTF8.GetBytes(body.GetRawText()));
        Assert.Equal(("genre", 9L), (answer.Model, answer.Version));
        Assert.Equal(3, answer.Results.Count);
        var hosts = new Dictionary<string, string[]>
        {
            [a.Node.PeerId.ToString()] = ["ffn.0.0", "ffn.0.1"],
            [b.Node.PeerId.ToString()] = ["ffn.1.0", "ffn.1.1"],
        };
        foreach (var result in answer.Results)
        {
            Assert.Equal(2, result.Probabilities.Count);
            Assert.Equal(result.Label, result.Probabilities[0].Label);
            Assert.Equal(2, result.Route.Count);
            Assert.All(result.Route, hop =>
            {
                Assert.Equal("ok", hop.Outcome);
                Assert.Contains(hop.Expert, hosts[hop.Host]);
                Assert.True(hop.LatencyMs > 0);
            });
            Assert.Equal(1.0, result.Route.Sum(h => h.Weight), 5);
        }
        Assert.Equal(["genre"], asked.Node.LoadedModels.Select(m => m.Name));
        Assert.Empty(asked.Node.HeldModels);
        using (var http = new HttpClient { BaseAddress = asked.Http })
            Assert.Contains("moemesh_node_query_duration_count{model=\"genre\",status=\"200\"} 1", await http.GetStringAsync("/metrics"));

        // The same weights computed here, through the same swarm, give the same probabilities.
        var spec = ModelFile.Load(Path.Combine(_folder.Sub("models"), "genre.safetensors")).Spec;
        var model = new MoEModel(spec, weights, asked.Node.CreateMixtureOfExperts);
        var expected = await model.PredictAsync(texts, default);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(spec.Head.Labels[expected[i].Label], answer.Results[i].Label);
            Assert.Equal(expected[i].Probabilities.Max(), answer.Results[i].Probabilities[0].P, 5);
        }
    }

    [Fact]
    public async Task BadQueries_GetTheirStatusAndAClearError_AndTheNodeKeepsServing()
    {
        var (a, b, holder, asked, _) = await SwarmAsync(o =>
        {
            o.Models.MaxQueryTexts = 4;
            o.Models.MaxQueryBytes = 4000;
        });
        await using var _a = a;
        await using var _b = b;
        await using var _h = holder;
        await using var _q = asked;

        (string Body, HttpStatusCode Status, string Error)[] cases =
        [
            ("not json", HttpStatusCode.BadRequest, "the body is not JSON"),
            ("[1, 2]", HttpStatusCode.BadRequest, "must be a JSON object"),
            ("{\"text\": \"hello\"}", HttpStatusCode.BadRequest, "the field 'model'"),
            ("{\"model\": \"genre\"}", HttpStatusCode.BadRequest, "exactly one of 'text'"),
            ("{\"model\": \"genre\", \"text\": \"a\", \"texts\": [\"b\"]}", HttpStatusCode.BadRequest, "exactly one of 'text'"),
            ("{\"model\": \"genre\", \"texts\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", HttpStatusCode.BadRequest, "at most 4 (MaxQueryTexts)"),
            ("{\"model\": \"genre\", \"text\": \"...\"}", HttpStatusCode.BadRequest, "'text' has no words"),
            ("{\"model\": \"genre\", \"text\": \"a\", \"top\": 0}", HttpStatusCode.BadRequest, "'top' must be"),
            ("{\"model\": \"genre\", \"text\": \"a\", \"top\": \"3\"}", HttpStatusCode.BadRequest, "'top' must be"),
            ("{\"model\": \"genre\", \"text\": \"a\", \"timeout_ms\": null}", HttpStatusCode.BadRequest, "'timeout_ms' must be"),
            ("{\"model\": \"genre\", \"text\": \"a\", \"timeout_ms\": -5}", HttpStatusCode.BadRequest, "'timeout_ms' must be"),
            ("{\"model\": \"genre\", \"txt\": \"a\"}", HttpStatusCode.BadRequest, "unknown field 'txt'"),
            ("{\"model\": \"\\ud800\", \"text\": \"a\"}", HttpStatusCode.BadRequest, "an escaped half of a UTF-16 surrogate pair"),
            ("{\"model\": \"genre\", \"texts\": [\"a\", \"\\udc00b\"]}", HttpStatusCode.BadRequest, "an escaped half of a UTF-16 surrogate pair"),
            ("{\"model\": \"no/such\", \"text\": \"a\"}", HttpStatusCode.BadRequest, "not a model name"),
            ("{\"model\": \"absent\", \"text\": \"a\"}", HttpStatusCode.NotFound, "No peer holds a model called 'absent'"),
            ($"{{\"model\": \"genre\", \"text\": \"{new string('a', 5000)}\"}}", HttpStatusCode.RequestEntityTooLarge, "larger than 4000 bytes"),
        ];
        foreach (var (body, expected, error) in cases)
        {
            var (status, answer) = await PostAsync(asked, body);
            Assert.True(expected == status, $"{body[..Math.Min(60, body.Length)]}: {status}, expected {expected}: {answer}");
            Assert.Contains(error, answer.GetProperty("error").GetString());
        }
        var (ok, _) = await PostAsync(asked, "{\"model\": \"genre\", \"text\": \"still serving\"}");
        Assert.Equal(HttpStatusCode.OK, ok);
    }

    [Fact]
    public async Task ModelQueryPeerMethod_AnswersLikeHttp_AndRefusesWithStatuses()
    {
        var (a, b, holder, asked, _) = await SwarmAsync(o => o.Models.MaxQueryBytes = 2000);
        await using var _a = a;
        await using var _b = b;
        await using var _h = holder;
        await using var _q = asked;
        async Task<Protocol.Rpc.PeerResponse> CallAsync(string body) => await holder.Node.Transport.CallAsync(asked.Endpoint,
            new Protocol.Rpc.PeerRequest(Hosting.MeshNode.QueryMethod, default, Encoding.UTF8.GetBytes(body), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(60)), default);

        using (var ok = await CallAsync("{\"model\": \"genre\", \"texts\": [\"one\", \"two\"]}"))
        {
            Assert.True(ok.IsOk, ok.ToString());
            Assert.Equal(2, QueryAnswer.FromJson(ok.Payload.Span).Results.Count);
        }
        foreach (var (body, status, error) in new[]
        {
            ("{\"model\": 5, \"text\": \"a\"}", Protocol.Wire.StatusCode.InvalidArgument, "'model' must be a string"),
            ("{\"model\": \"absent\", \"text\": \"a\"}", Protocol.Wire.StatusCode.NotFound, "No peer holds a model called 'absent'"),
            ($"{{\"model\": \"genre\", \"text\": \"{new string('a', 3000)}\"}}", Protocol.Wire.StatusCode.InvalidArgument, "larger than 2000 bytes (MaxQueryBytes)"),
        })
        {
            using var refused = await CallAsync(body);
            Assert.Equal(status, refused.Status);
            using var document = JsonDocument.Parse(refused.Message);
            Assert.Contains(error, document.RootElement.GetProperty("error").GetString());
        }
    }

    [Fact]
    public async Task WhenNoExpertRemoteOrLocalCanAnswer_TheQueryIs503_NamingTheCalls()
    {
        var (a, b, holder, asked, _) = await SwarmAsync();
        await using var _h = holder;
        await using var _q = asked;
        var (ok, _) = await PostAsync(asked, "{\"model\": \"genre\", \"text\": \"first\"}");
        Assert.Equal(HttpStatusCode.OK, ok);
        // Every expert host goes away; the asked node hosts none to fall back on.
        await a.DisposeAsync();
        await b.DisposeAsync();
        var (status, answer) = await PostAsync(asked, "{\"model\": \"genre\", \"text\": \"second\"}");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Contains("no expert, remote or local, could answer", answer.GetProperty("error").GetString());
    }
}
