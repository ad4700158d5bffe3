using System.Net;
using System.Text;
using System.Text.Json;
using PuppeteerSharp;

namespace MoEMesh.Node.Tests;

/// <summary>
/// The status page and the JSON endpoints behind it, on a swarm of three in-process nodes over real sockets:
/// A hosts ffn.0.0 and ffn.0.1, B hosts ffn.1.0 and ffn.1.1, and C hosts no expert but holds the model
/// "genre" over that grid. The page is loaded in Debian's chromium, headless (scripts/test installs it).
/// </summary>
public sealed class StatusPageTests : IDisposable
{
    private const string Chromium = "/usr/bin/chromium";
    private static readonly string[] Uids = ["ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1"];
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private async Task<(TestNode A, TestNode B, TestNode C)> SwarmAsync(int recentQueries = 32)
    {
        var a = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.0.0"), TestNode.Ffn("ffn.0.1")), 61);
        var b = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b"), TestNode.Ffn("ffn.1.0"), TestNode.Ffn("ffn.1.1")), 62, a);
        var models = _folder.Sub("models");
        TestModels.Write(Path.Combine(models, "genre.safetensors"), "genre", 9);
        var options = TestNode.Configure(_folder.Sub("c"));
        options.ModelDirectory = models;
        options.Models.RecentQueries = recentQueries;
        // On a loaded machine a second expert may answer well after the first: every expert gets the whole deadline.
        options.Routing = new Routing.RoutingOptions
        {
            ForwardTimeout = TimeSpan.FromSeconds(20), DiscoveryTimeout = TimeSpan.FromSeconds(10), BackwardTimeout = TimeSpan.FromSeconds(20), GraceAfterKMin = TimeSpan.FromSeconds(20),
        };
        var c = await TestNode.StartAsync(options, 63, a, b);
        await TestNode.WaitForExpertsAsync(c.Node, "ffn.0.0", "ffn.0.1", "ffn.1.0", "ffn.1.1");
        return (a, b, c);
    }

    private static HttpClient Client(TestNode node) => new() { BaseAddress = node.Http, Timeout = TimeSpan.FromSeconds(60) };

    [Fact]
    public async Task InARealBrowser_ThePageListsEveryExpertAndPeer_AndAQueryFromTheForm_ShowsItsRoute()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: scripts/test installs it (apt-get install chromium), or install it yourself.");
        var (a, b, c) = await SwarmAsync();
        await using var _ = a;
        await using var __ = b;
        await using var ___ = c;
        var hosts = new Dictionary<string, string> { ["ffn.0.0"] = a.Node.PeerId.ToString(), ["ffn.0.1"] = a.Node.PeerId.ToString(), ["ffn.1.0"] = b.Node.PeerId.ToString(), ["ffn.1.1"] = b.Node.PeerId.ToString() };

        // A client's text and what a host announces are untrusted: markup in them must show as text, never as markup.
        const string hostile = "<img src=x onerror=\"window.owned = 1\"> the jury";
        using (var http = Client(c))
        using (var asked = await http.PostAsync("/v1/query", new StringContent(JsonSerializer.Serialize(new { model = "genre", text = hostile }), Encoding.UTF8, "application/json")))
            Assert.True(asked.StatusCode == HttpStatusCode.OK, await asked.Content.ReadAsStringAsync());
        // ffn.5.5 lies outside the model's 2x2 grid (beam search never picks it) but inside the grid the page walks.
        var prankster = Protocol.Identity.PeerIdentity.FromSeed(64);
        var record = new Protocol.Wire.Experts.ExpertRecord { Addresses = { "127.0.0.1:9" }, Type = "ffn", SchemaHash = "h", Domain = "<b>bold</b>", Contributor = "<i>me</i>" };
        await c.Node.Directory.DeclareAsync(prankster, [(Protocol.Addressing.ExpertUid.Parse("ffn.5.5"), record)], DateTimeOffset.UtcNow + TimeSpan.FromMinutes(5), default);
        hosts["ffn.5.5"] = prankster.PeerId.ToString();

        await using var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Timeout = 120_000,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        });
        await using var page = await browser.NewPageAsync();
        page.DefaultTimeout = 60_000;
        var problems = new List<string>();
        page.Console += (_, e) => { if (e.Message.Type == ConsoleType.Error) problems.Add(e.Message.Text); };
        page.PageError += (_, e) => problems.Add(e.Message);
        await page.SetViewportAsync(new ViewPortOptions { Width = 1100, Height = 900 });
        await page.GoToAsync(c.Http.ToString(), WaitUntilNavigation.Load);

        // Every expert, on the host that serves it; every peer; the model in the form.
        string[] listed = [.. Uids, "ffn.5.5"];
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#experts tbody tr[data-uid]').length === 5 && document.querySelectorAll('#peers tbody tr[data-peer]').length === 2"
            + " && document.querySelector('#query-model option[value=genre]') !== null");
        var experts = await page.EvaluateExpressionAsync<string[][]>("[...document.querySelectorAll('#experts tbody tr[data-uid]')].map(r => [r.dataset.uid, r.dataset.host])");
        Assert.Equal(listed.Select(u => new[] { u, hosts[u] }), experts);
        var peers = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#peers tbody tr[data-peer]')].map(r => r.dataset.peer)");
        Assert.Equal(new[] { a.Node.PeerId.ToString(), b.Node.PeerId.ToString() }.Order(), peers.Order());
        Assert.Equal(listed, await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#heatmaps td[data-uid]')].map(c => c.dataset.uid)"));
        Assert.Equal(["<b>bold</b>", "<i>me</i>"],
            await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#experts tr[data-uid=\"ffn.5.5\"] td.origin')].map(c => c.textContent)"));
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('#experts b, #experts i').length"));
        Assert.Equal(c.Node.PeerId.ToString(), await page.EvaluateExpressionAsync<string>("document.getElementById('self').title"));

        // A query sent from the form: its label, and its route through experts on their hosts.
        await page.TypeAsync("#query-text", "the jury praised the election");
        await page.ClickAsync("#query-send");
        await page.WaitForSelectorAsync("#answer-route tbody tr, #answer .problem");
        Assert.Equal("", await page.EvaluateExpressionAsync<string>("document.querySelector('#answer .problem')?.textContent ?? ''"));
        var label = await page.EvaluateExpressionAsync<string>("document.getElementById('answer-label').textContent");
        Assert.Contains(label, (string[])["a", "b", "c"]);
        var route = await page.EvaluateExpressionAsync<string[][]>("[...document.querySelectorAll('#answer-route tbody tr')].map(r => [r.dataset.hop, r.dataset.host, r.lastElementChild.textContent])");
        Assert.Equal(2, route.Length); // k = 2
        Assert.All(route, hop => Assert.Equal([hop[0], hosts[hop[0]], "ok"], hop));

        // The recent queries show it too, newest first, once the page refreshed after the answer; the hostile text as text.
        await page.WaitForFunctionAsync("() => document.querySelectorAll('#route-list .query').length === 2 && document.querySelectorAll('#route-list .hop').length === 4");
        var texts = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#route-list .text')].map(t => t.textContent)");
        Assert.StartsWith("“the jury praised the election”", texts[0]);
        Assert.StartsWith($"“{hostile}”", texts[1]);
        Assert.Equal(0, await page.EvaluateExpressionAsync<int>("document.querySelectorAll('main img').length"));
        Assert.Empty(problems);

        await page.ScreenshotAsync(Path.Combine(AppContext.BaseDirectory, "status-page.png"), new ScreenshotOptions { FullPage = true });
    }

    [Fact]
    public async Task JsonEndpoints_DescribeTheSwarm_AndBadInputGetsAClearError()
    {
        var (a, b, c) = await SwarmAsync();
        await using var _ = a;
        await using var __ = b;
        await using var ___ = c;
        using var http = Client(c);

        using (var experts = JsonDocument.Parse(await http.GetStringAsync("/v1/experts")))
        {
            var grid = Assert.Single(experts.RootElement.GetProperty("grids").EnumerateArray());
            Assert.Equal(("ffn.", 4, false), (grid.GetProperty("prefix").GetString(), grid.GetProperty("found").GetInt32(), grid.GetProperty("truncated").GetBoolean()));
            var listed = experts.RootElement.GetProperty("experts").EnumerateArray().ToArray();
            Assert.Equal(Uids, listed.Select(e => e.GetProperty("uid").GetString()));
            var host = Assert.Single(listed[2].GetProperty("hosts").EnumerateArray());
            Assert.Equal(b.Node.PeerId.ToString(), host.GetProperty("peer_id").GetString());
            Assert.False(host.GetProperty("local").GetBoolean());
            Assert.Equal([b.Node.ListenAddress.ToString()], host.GetProperty("addresses").EnumerateArray().Select(x => x.GetString()));
            Assert.True(host.GetProperty("announced_at").GetDateTimeOffset() < host.GetProperty("expires_at").GetDateTimeOffset());
        }
        // A node lists the grids of its own experts without being asked; others by ?grid=.
        using (var fromA = JsonDocument.Parse(await Client(a).GetStringAsync("/v1/experts?grid=att")))
        {
            Assert.Equal(["att.", "ffn."], fromA.RootElement.GetProperty("grids").EnumerateArray().Select(g => g.GetProperty("prefix").GetString()));
            Assert.True(fromA.RootElement.GetProperty("experts")[0].GetProperty("hosts")[0].GetProperty("local").GetBoolean());
        }
        (string Query, string Said)[] bad =
        [
            ("grid=ffn.0", "'grid': 'ffn.0' is not a grid name such as ffn (a name alone, without coordinates)."),
            ("grid=", "'grid' is empty; give a grid name such as ffn."),
            (string.Join('&', Enumerable.Range(0, 9).Select(i => $"grid=g{i}")), "'grid' is given 9 times; at most 8 grids are listed per request."),
        ];
        foreach (var (query, said) in bad)
        {
            using var refused = await http.GetAsync("/v1/experts?" + query);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Equal(said, JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }

        using (var peers = JsonDocument.Parse(await http.GetStringAsync("/v1/peers")))
        {
            Assert.Equal(c.Node.PeerId.ToString(), peers.RootElement.GetProperty("self").GetString());
            Assert.Equal(2, peers.RootElement.GetProperty("routing_table_size").GetInt32());
            Assert.Equal(new[] { a.Node.PeerId.ToString(), b.Node.PeerId.ToString() }.Order(),
                peers.RootElement.GetProperty("peers").EnumerateArray().Select(p => p.GetProperty("peer_id").GetString()).Order());
            Assert.Equal(2, peers.RootElement.GetProperty("buckets").EnumerateArray().Sum(x => x.GetProperty("contacts").GetInt32()));
            Assert.Empty(peers.RootElement.GetProperty("banned").EnumerateArray());
        }

        Assert.Equal("{\"queries\":[]}", await http.GetStringAsync("/v1/routes"));
        using var asked = await http.PostAsync("/v1/query", new StringContent("{\"model\": \"genre\", \"texts\": [\"a small animal\", \"the election\"]}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
        using var missing = await http.PostAsync("/v1/query", new StringContent("{\"model\": \"nowhere\", \"text\": \"a small animal\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        using (var routes = JsonDocument.Parse(await http.GetStringAsync("/v1/routes")))
        {
            var queries = routes.RootElement.GetProperty("queries").EnumerateArray().ToArray();
            Assert.Equal(["nowhere", "genre"], queries.Select(q => q.GetProperty("model").GetString()));
            Assert.Equal(404, queries[0].GetProperty("status").GetInt32());
            Assert.Contains("nowhere", queries[0].GetProperty("error").GetString());
            var texts = queries[1].GetProperty("texts").EnumerateArray().ToArray();
            Assert.Equal(["a small animal", "the election"], texts.Select(t => t.GetProperty("text").GetString()));
            Assert.All(texts, t => Assert.Equal(2, t.GetProperty("route").GetArrayLength()));
            Assert.Equal(9, queries[1].GetProperty("version").GetInt64());
        }

        // On loopback, a request naming another host (a web page's DNS rebinding) is refused; the machine's own names are not.
        foreach (var (host, status) in ((string, HttpStatusCode)[])[("rebinding.example", HttpStatusCode.BadRequest), ("localhost", HttpStatusCode.OK), ("127.0.0.1", HttpStatusCode.OK)])
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/routes");
            request.Headers.Host = $"{host}:{c.Http.Port}";
            using var answer = await http.SendAsync(request);
            Assert.True(answer.StatusCode == status, $"Host {host}: {answer.StatusCode}");
        }

        using var page = await http.GetAsync("/");
        Assert.Equal("text/html; charset=utf-8", page.Content.Headers.ContentType?.ToString());
        Assert.Contains("script-src 'self'", page.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Contains("<script src=\"/status.js\"", await page.Content.ReadAsStringAsync());
        foreach (var path in (string[])["/status.js", "/status.css", "/v1/experts", "/v1/peers", "/v1/routes"])
        {
            using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            Assert.True(head.IsSuccessStatusCode, $"HEAD {path}: {head.StatusCode}");
        }
    }

    [Fact]
    public async Task ANodeKeepingNoRecentQueries_ShowsNone()
    {
        var (a, b, c) = await SwarmAsync(recentQueries: 0);
        await using var _ = a;
        await using var __ = b;
        await using var ___ = c;
        using var http = Client(c);
        using var asked = await http.PostAsync("/v1/query", new StringContent("{\"model\": \"genre\", \"text\": \"a private text\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
        Assert.Equal("{\"queries\":[]}", await http.GetStringAsync("/v1/routes"));
    }
}
