using System.Net.Http.Json;
using System.Text.Json;
using MoEMesh.Node.Http;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Wire;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;

namespace MoEMesh.Node.Tests;

/// <summary>The status page, expert lookup and metrics over real HTTP, and node.status over the peer protocol.</summary>
public sealed class HttpTests : IDisposable
{
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    [Fact]
    public async Task Status_Experts_AndMetrics_DescribeTheRunningNode()
    {
        await using var node = await TestNode.StartAsync(TestNode.Configure(_folder.Path, TestNode.Ffn("ffn.5.0"), TestNode.Ffn("ffn.5.1")), 11);
        var invoker = new RemoteExpertInvoker(node.Node.Transport);
        using var input = Tensor.Zeros(2, 8);
        (await invoker.ForwardAsync(new ExpertTarget(ExpertUid.Parse("ffn.5.0"), node.Endpoint), input, Compression.None, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10), default)).Value!.Dispose();
        using var http = new HttpClient { BaseAddress = node.Http, Timeout = TimeSpan.FromSeconds(30) };

        var status = NodeStatus.FromJson(await http.GetByteArrayAsync("/v1/status"));
        Assert.True(status.Ready); // started: joined, experts built and announced
        Assert.Equal(node.Node.PeerId.ToString(), status.PeerId);
        Assert.Equal(["ffn.5.0", "ffn.5.1"], status.Experts.Select(e => e.Uid));
        Assert.Equal(node.Node.ListenAddress.ToString(), status.ListenAddress);
        Assert.NotNull(status.AnnouncedAfterMs);

        using var hosts = JsonDocument.Parse(await http.GetStringAsync("/v1/experts/ffn.5.1"));
        Assert.Equal(node.Node.PeerId.ToString(), hosts.RootElement[0].GetProperty("peer_id").GetString());
        var bad = await http.GetAsync("/v1/experts/not-a-uid");
        Assert.Equal(System.Net.HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("not an expert uid", await bad.Content.ReadAsStringAsync());

        var metrics = await http.GetStringAsync("/metrics");
        Assert.Contains("# TYPE moemesh_node_expert_call_duration histogram", metrics);
        Assert.Contains("moemesh_node_expert_call_duration_count{expert=\"ffn.5.0\",method=\"expert.forward\",outcome=\"ok\"} 1", metrics);
        Assert.Contains("moemesh_dht_lookup_rounds_count{operation=\"store\"}", metrics);
        Assert.Contains("moemesh_node_expert_queue_depth{expert=\"ffn.5.1\"} 0", metrics);
        // The node's own meters only: the forward of 2 rows is its one batch (nodes of other tests share the process).
        Assert.Contains("moemesh_experts_batch_rows_count{kind=\"forward\"} 1\n", metrics);
        Assert.Contains("moemesh_experts_batch_rows_sum{kind=\"forward\"} 2\n", metrics);
        Assert.Contains("moemesh_experts_batch_rows_bucket{kind=\"forward\",le=\"1\"} 0\n", metrics);
        Assert.Contains("moemesh_experts_batch_rows_bucket{kind=\"forward\",le=\"2\"} 1\n", metrics);
        // The peer protocol's bytes are the process's: the call above moved some each way, on each side.
        foreach (var labels in (string[])["direction=\"received\",side=\"server\"", "direction=\"sent\",side=\"client\""])
        {
            var line = metrics.Split('\n').Single(l => l.StartsWith($"moemesh_peer_bytes{{{labels}}} ", StringComparison.Ordinal));
            Assert.True(double.Parse(line.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) > 0, line);
        }
    }

    [Fact]
    public async Task NodeStatus_OverThePeerProtocol_IsTheSameDocument()
    {
        await using var node = await TestNode.StartAsync(TestNode.Configure(_folder.Path, TestNode.Ffn("ffn.6.0")), 12);
        using var response = await node.Node.Transport.CallAsync(node.Endpoint,
            new Protocol.Rpc.PeerRequest(NodeStatus.Method, default, default, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10)), default);
        Assert.True(response.IsOk, response.ToString());
        var status = NodeStatus.FromJson(response.Payload.Span);
        Assert.Equal("ffn.6.0", Assert.Single(status.Experts).Uid);
    }

    [Fact]
    public async Task GetEndpoints_TakeHead_AndEveryErrorHasAJsonBody()
    {
        await using var node = await TestNode.StartAsync(TestNode.Configure(_folder.Path, TestNode.Ffn("ffn.7.0")), 13);
        using var http = new HttpClient { BaseAddress = node.Http, Timeout = TimeSpan.FromSeconds(30) };
        foreach (var path in (string[])["/v1/status", "/v1/experts/ffn.7.0", "/v1/models", "/metrics"])
        {
            using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            Assert.True(head.IsSuccessStatusCode, $"HEAD {path}: {head.StatusCode}");
            Assert.NotNull(head.Content.Headers.ContentType);
        }

        using var missing = await http.GetAsync("/v1/nowhere");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, missing.StatusCode);
        using (var error = JsonDocument.Parse(await missing.Content.ReadAsStringAsync()))
            Assert.StartsWith("no endpoint /v1/nowhere; the endpoints are GET / (the status page), GET /v1/status", error.RootElement.GetProperty("error").GetString());
        using var wrongMethod = await http.GetAsync("/v1/query");
        Assert.Equal(System.Net.HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        using (var error = JsonDocument.Parse(await wrongMethod.Content.ReadAsStringAsync()))
            Assert.StartsWith("GET is not taken by /v1/query", error.RootElement.GetProperty("error").GetString());

        var status = await http.GetStringAsync("/v1/status");
        Assert.Contains("->", status);
        Assert.DoesNotContain("\\u003E", status);
    }
}
