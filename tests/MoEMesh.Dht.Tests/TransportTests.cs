using System.Net;
using Google.Protobuf;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Transport;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;
using Wire = MoEMesh.Protocol.Wire.Dht;

namespace MoEMesh.Dht.Tests;

/// <summary>The DHT over the real peer protocol: sockets, TLS, handshake, protobuf.</summary>
public class TransportTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(120);

    [Fact]
    public async Task SixteenNodesOverTcpWithTls_StoreAndFindEachOthersValues()
    {
        await using var cluster = TcpCluster.Start(16);
        using var limit = new CancellationTokenSource(Bound);
        await Task.WhenAll(cluster.Nodes.Skip(1).Select(n => n.Dht.BootstrapAsync([cluster.Nodes[0].Endpoint], limit.Token)));
        Assert.All(cluster.Nodes, n => Assert.True(n.Dht.RoutingTableSize > 0));

        var expiration = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(5);
        var stores = cluster.Nodes.Take(8).Select(n => n.Dht.StoreAsync(
            DhtRecord.Signed("expert:ffn.0.1", n.Identity.PeerId.ToString(), BitConverter.GetBytes(n.Index), expiration, n.Identity), limit.Token));
        var results = await Task.WhenAll(stores);
        Assert.All(results, r => Assert.True(r.Replicas >= 3, r.ToString()));
        await cluster.Nodes[3].Dht.StoreAsync(DhtRecord.Unsigned("model:demo", null, new byte[] { 9 }, expiration), limit.Token);

        foreach (var reader in cluster.Nodes.Skip(8))
        {
            var value = await reader.Dht.GetAsync("expert:ffn.0.1", latest: true, limit.Token);
            Assert.NotNull(value);
            Assert.Equal(cluster.Nodes.Take(8).Select(n => n.Identity.PeerId.ToString()).Order(), value.Records.Select(r => r.Subkey!).Order());
            var model = await reader.Dht.GetAsync("model:demo", latest: false, limit.Token);
            Assert.Equal(9, model!.Plain!.Value.Span[0]);
        }
    }

    [Fact]
    public async Task KeyHoldingMoreThanAnEnvelope_IsStoredAndFoundWhole_OverTcp()
    {
        // 1,000 entries of about 700 bytes: a store of 256 of them and a find answer of all of them are
        // each far beyond the protocol's 256 KiB envelope, so they must travel as payloads.
        await using var cluster = TcpCluster.Start(4);
        using var limit = new CancellationTokenSource(Bound);
        await Task.WhenAll(cluster.Nodes.Skip(1).Select(n => n.Dht.BootstrapAsync([cluster.Nodes[0].Endpoint], limit.Token)));
        var expiration = DateTimeOffset.UtcNow + TimeSpan.FromMinutes(5);
        var records = Enumerable.Range(0, 1000).Select(i => DhtRecord.Unsigned("big:key", $"entry-{i:D4}", new byte[560], expiration)).ToArray();
        Assert.All(await cluster.Nodes[1].Dht.StoreManyAsync(records, limit.Token), r => Assert.True(r.Replicas >= 3, r.ToString()));

        // Asked directly over TCP, so no local copy can stand in for the answer.
        using var asker = PeerIdentity.FromSeed(650);
        await using var pool = new PeerConnectionPool(asker, new PeerProtocolOptions { UseTls = true }, TimeProvider.System);
        var client = new DhtRpcClient(new TcpPeerTransport(pool, TimeProvider.System));
        var holder = cluster.Nodes[0];
        var answer = await client.FindAsync(new Rpc.DhtSender(asker.PeerId, null, ClientMode: true), new Ids.DhtContact(holder.Identity.PeerId, holder.Endpoint.Address),
            [Rpc.FindQuery.ForKey("big:key")], DateTimeOffset.UtcNow + TimeSpan.FromSeconds(20), limit.Token);
        Assert.True(answer.IsOk, answer.ToString());
        Assert.Equal(1000, answer.Value![0].Records.Count);
    }

    [Fact]
    public async Task Handler_MalformedRequests_GetStatusesNamingTheProblem_AndTheNodeKeepsServing()
    {
        using var identity = PeerIdentity.FromSeed(700);
        using var caller = PeerIdentity.FromSeed(701);
        var options = new DhtOptions { MaxKeysPerRpc = 4 };
        await using var dht = new DhtNode(identity.PeerId, new Protocol.Addressing.PeerAddress("127.0.0.1", 9), new NoNetwork(), options, TimeProvider.System);
        var router = new PeerRouter(TimeProvider.System).MapDht(dht, options);

        async Task<PeerResponse> Call(string method, byte[] header, byte[]? payload = null) =>
            await router.DispatchAsync(new PeerRequest(method, header, payload, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5)) { Caller = caller.PeerId }, default);

        var garbage = await Call(DhtRpcHandler.FindMethod, [0xff, 0xff, 0xff]);
        Assert.Equal(StatusCode.InvalidArgument, garbage.Status);
        Assert.Contains("not a valid FindRequest", garbage.Message);

        var badAddress = new Wire.FindRequest { Sender = new Wire.DhtSender { Address = "no-port" } };
        var address = await Call(DhtRpcHandler.FindMethod, badAddress.ToByteArray());
        Assert.Equal(StatusCode.InvalidArgument, address.Status);
        Assert.Contains("sender address 'no-port' is not host:port", address.Message);

        var shortTarget = new Wire.FindRequest();
        shortTarget.Queries.Add(new Wire.FindQuery { Target = ByteString.CopyFrom(new byte[31]) });
        var target = await Call(DhtRpcHandler.FindMethod, shortTarget.ToByteArray());
        Assert.Equal(StatusCode.InvalidArgument, target.Status);
        Assert.Contains("query 0: target has 31 bytes", target.Message);

        var many = new Wire.FindRequest();
        for (int i = 0; i < 5; i++) many.Queries.Add(new Wire.FindQuery { Target = ByteString.CopyFrom(new byte[32]) });
        var tooMany = await Call(DhtRpcHandler.FindMethod, many.ToByteArray());
        Assert.Equal(StatusCode.ResourceExhausted, tooMany.Status);
        Assert.Contains("limit of 4 per call", tooMany.Message);

        var forged = DhtRecord.Signed("expert:a.0", identity.PeerId.ToString(), new byte[] { 1 }, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1), caller);
        var store = new Wire.StoreRequest { Sender = new Wire.DhtSender { Address = "127.0.0.1:10" } };
        store.Records.Add(DhtWire.ToWire(forged));
        store.Records.Add(DhtWire.ToWire(DhtRecord.Unsigned("fine", null, new byte[] { 2 }, DateTimeOffset.UtcNow + TimeSpan.FromMinutes(1))));
        var stored = await Call(DhtRpcHandler.StoreMethod, [], store.ToByteArray());
        Assert.Equal(StatusCode.Ok, stored.Status);
        var outcomes = stored.ParseHeader(Wire.StoreResponse.Parser).Results;
        Assert.Equal(Wire.StoreStatus.Rejected, outcomes[0].Status);
        Assert.Contains("names owner", outcomes[0].Reason);
        Assert.Equal(Wire.StoreStatus.Stored, outcomes[1].Status);

        var ping = await Call(DhtRpcHandler.PingMethod, new Wire.PingRequest().ToByteArray());
        Assert.Equal(identity.PeerId.ToString(), ping.ParseHeader(Wire.PingResponse.Parser).PeerId);
    }

    [Theory]
    [InlineData("0.0.0.0:7000")]
    [InlineData("[::]:7000")]
    [InlineData("239.0.0.1:7000")]
    public async Task UndialableAddresses_NeverBecomeContacts(string undialable)
    {
        using var identity = PeerIdentity.FromSeed(702);
        using var caller = PeerIdentity.FromSeed(703);
        var options = new DhtOptions();
        await using var dht = new DhtNode(identity.PeerId, new Protocol.Addressing.PeerAddress("127.0.0.1", 9), new NoNetwork(), options, TimeProvider.System);
        var router = new PeerRouter(TimeProvider.System).MapDht(dht, options);

        // A sender claiming it: answered, but not put in the routing table.
        var ping = new Wire.PingRequest { Sender = new Wire.DhtSender { Address = undialable } };
        using var answer = await router.DispatchAsync(new PeerRequest(DhtRpcHandler.PingMethod, ping.ToByteArray(), default, DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5)) { Caller = caller.PeerId }, default);
        Assert.Equal(StatusCode.Ok, answer.Status);
        Assert.Equal(0, dht.RoutingTableSize);

        // A find answer naming it: the contact is skipped, a well-formed one beside it kept.
        Assert.Null(DhtWire.FromWire(new Wire.DhtContact { PeerId = caller.PeerId.ToString(), Address = undialable }));
        Assert.NotNull(DhtWire.FromWire(new Wire.DhtContact { PeerId = caller.PeerId.ToString(), Address = "127.0.0.1:7000" }));
        Assert.Null(DhtWire.FromWire(new Wire.DhtContact { PeerId = "not-a-peer-id", Address = "127.0.0.1:7000" }));
    }

    /// <summary>A network that is never reached (the handler test calls the router directly).</summary>
    private sealed class NoNetwork : Rpc.IDhtRpc
    {
        public Task<Rpc.DhtRpcResult<PeerId>> PingAsync(Rpc.DhtSender from, PeerEndpoint target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            Task.FromResult(Rpc.DhtRpcResult<PeerId>.Failed(Protocol.Rpc.CallOutcome.Unreachable, "no network in this test"));

        public Task<Rpc.DhtRpcResult<IReadOnlyList<Storage.StoreOutcome>>> StoreAsync(Rpc.DhtSender from, Ids.DhtContact target, IReadOnlyList<DhtRecord> records, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            Task.FromResult(Rpc.DhtRpcResult<IReadOnlyList<Storage.StoreOutcome>>.Failed(Protocol.Rpc.CallOutcome.Unreachable, "no network in this test"));

        public Task<Rpc.DhtRpcResult<IReadOnlyList<Rpc.FindAnswer>>> FindAsync(Rpc.DhtSender from, Ids.DhtContact target, IReadOnlyList<Rpc.FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken) =>
            Task.FromResult(Rpc.DhtRpcResult<IReadOnlyList<Rpc.FindAnswer>>.Failed(Protocol.Rpc.CallOutcome.Unreachable, "no network in this test"));
    }

    /// <summary>N DHT nodes, each with its own listener, pool and identity, on loopback.</summary>
    private sealed class TcpCluster : IAsyncDisposable
    {
        public List<TcpNode> Nodes { get; } = [];

        public static TcpCluster Start(int count)
        {
            var cluster = new TcpCluster();
            for (int i = 0; i < count; i++) cluster.Nodes.Add(TcpNode.Start(i));
            return cluster;
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var n in Nodes) await n.DisposeAsync();
        }
    }

    private sealed class TcpNode : IAsyncDisposable
    {
        private PeerListener _listener = null!;
        private PeerConnectionPool _pool = null!;

        public int Index { get; private init; }

        public PeerIdentity Identity { get; private init; } = null!;

        public DhtNode Dht { get; private set; } = null!;

        public PeerEndpoint Endpoint => new(_listener.Address, Identity.PeerId);

        public static TcpNode Start(int index)
        {
            // Limits for a busy machine: these nodes talk over real TLS sockets while other test assemblies
            // load both cores, and a call past the default 3 s would drop a peer from the lookup.
            var protocol = new PeerProtocolOptions { UseTls = true, ConnectTimeout = TimeSpan.FromSeconds(20), HandshakeTimeout = TimeSpan.FromSeconds(20) };
            var node = new TcpNode { Index = index, Identity = PeerIdentity.FromSeed(600 + index) };
            var router = new PeerRouter(TimeProvider.System);
            node._listener = PeerListener.Start(new PeerServer(node.Identity, router, protocol, TimeProvider.System), new IPEndPoint(IPAddress.Loopback, 0));
            node._pool = new PeerConnectionPool(node.Identity, protocol, TimeProvider.System);
            var options = new DhtOptions { RpcTimeout = TimeSpan.FromSeconds(20), SlowRpcThreshold = TimeSpan.FromSeconds(5), OperationTimeout = TimeSpan.FromSeconds(60) };
            node.Dht = new DhtNode(node.Identity.PeerId, node._listener.Address, new DhtRpcClient(new TcpPeerTransport(node._pool, TimeProvider.System)), options, TimeProvider.System);
            router.MapDht(node.Dht, options);
            return node;
        }

        public async ValueTask DisposeAsync()
        {
            await Dht.DisposeAsync();
            await _pool.DisposeAsync();
            await _listener.DisposeAsync();
            Identity.Dispose();
        }
    }

    [Fact]
    public void BadOptions_StopTheNodeBeingMade_NamingTheSetting()
    {
        using var identity = PeerIdentity.FromSeed(702);
        var e = Assert.Throws<ArgumentException>(() =>
            new DhtNode(identity.PeerId, null, new NoNetwork(), new DhtOptions { OperationTimeout = TimeSpan.FromSeconds(2) }, TimeProvider.System));
        Assert.Equal("DhtOptions:OperationTimeout: must exceed RpcTimeout (00:00:03): a store needs a lookup and then a round of stores; got 00:00:02.", e.Message);
    }
}
