using MoEMesh.Experts.Weights;
using MoEMesh.Node.Cli;
using MoEMesh.Node.Data;
using MoEMesh.Node.Hosting;
using MoEMesh.Node.Serving;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;
using MoEMesh.Routing.Weights;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Optimizers;

namespace MoEMesh.Node.Tests;

/// <summary>
/// Trained experts outlive their hosts: hosts publish snapshots of their weights and hand copies to peers; a
/// node that takes a uid over adopts the newest snapshot that checks out; replicas reconcile their weights.
/// Real nodes over loopback sockets; the publish and reconcile rounds are run by the test, not by timers.
/// </summary>
[Collection(SwarmsOfTheirOwn.Name)]
public sealed class PublishedWeightsTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private const int Dim = 16;
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static ExpertHostingOptions Expert(string uid) => new() { Type = "ffn", Uid = uid, HiddenDim = Dim, Optimizer = "adam", LearningRate = 3e-3f };

    /// <summary>A host whose timers never fire during a test (it publishes and reconciles when told), announcing every 2 s (records lapse 4 s after a host goes).</summary>
    private NodeOptions Host(string name, bool trainable, params string[] uids)
    {
        var options = TestNode.Configure(_folder.Sub(name), uids.Select(Expert).ToArray());
        options.UpdatePeriod = TimeSpan.FromSeconds(2);
        options.Serving.OpenTraining = trainable;
        options.Weights.PublishPeriod = options.Weights.ReconcilePeriod = TimeSpan.FromHours(1);
        options.Routing = TestNode.Patient();
        return options;
    }

    private static IReadOnlyList<Example> Shipped(string file, int count) =>
        DataFileReader.Read(Path.Combine(Testing.RepositoryRoot.Path, "data", file), DataFormat.Tsv, new DataColumns()).Examples.Take(count).ToArray();

    /// <summary>Waits (polling the DHT, at most a minute) until the hosts of <paramref name="uid"/> are exactly <paramref name="hosts"/>.</summary>
    private static async Task WaitForHostsAsync(MeshNode asking, string uid, params PeerId[] hosts)
    {
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (true)
        {
            var found = (await asking.Directory.RediscoverAsync(ExpertUid.Parse(uid), default)).Select(h => h.Host.ToString()).Order().ToArray();
            if (found.SequenceEqual(hosts.Select(h => h.ToString()).Order())) return;
            Assert.True(DateTime.UtcNow < until, $"{uid} is still announced by [{string.Join(", ", found)}], not [{string.Join(", ", hosts)}]");
            await Task.Delay(200);
        }
    }

    private static HostedExpert ExpertOf(TestNode node, string uid) => node.Node.Experts[uid];

    [Fact]
    public async Task TheOnlyHostOfTwoExpertsLeaves_ANewNodeAdoptsTheirPublishedWeights_AndTheModelPredictsAsBefore()
    {
        var train = Shipped("train.tsv", 1200);
        var test = Shipped("test.tsv", 200);
        var labels = train.Concat(test).Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        await using var a = await TestNode.StartAsync(Host("a", true, "ffn.0.0", "ffn.0.1"), 61);
        await using var b = await TestNode.StartAsync(Host("b", true, "ffn.1.0", "ffn.1.1"), 62, a);
        await using var gating = await TestNode.StartAsync(Host("g", false), 63, a, b);

        // Train a model on the shipped data against the two hosts; every expert trains on its host.
        var spec = new ModelSpec(new TrunkSpec(4096, Dim), [new LayerSpec("ffn", [2, 2], "ffn", Dim, K: 2, RouterLosses: new RouterLossWeights())], new HeadSpec(labels), new DataColumns());
        var model = new MoEModel(spec, ModelWeights.Initialize(spec, seed: 5), gating.Node.CreateMixtureOfExperts);
        var optimizer = new Adam(model.Parameters, new LearningRateSchedule(0.01f));
        var label = labels.Select((l, i) => (l, i)).ToDictionary(p => p.l, p => p.i);
        foreach (var batch in train.Chunk(32))
            await model.TrainAsync(batch.Select(e => e.Text).ToArray(), batch.Select(e => label[e.Label]).ToArray(), optimizer, default);
        long[] trained = [ExpertOf(a, "ffn.0.0").Backend.UpdateCount, ExpertOf(a, "ffn.0.1").Backend.UpdateCount];
        Assert.All(trained, u => Assert.True(u > 0));

        // a publishes; copies go to the other nodes, so the weights outlive it.
        var published = await a.Node.PublishWeightsAsync(default);
        Assert.Equal(["ffn.0.0", "ffn.0.1"], published.Select(p => p.Uid).Order());
        var holders = await gating.Node.Weights.FindAsync([ExpertUid.Parse("ffn.0.0")], default);
        Assert.Contains(holders.Single().Value, h => h.Holder != a.Node.PeerId);

        var texts = test.Select(e => e.Text).ToArray();
        var before = await model.PredictAsync(texts, default);
        await a.DisposeAsync();
        await WaitForHostsAsync(gating.Node, "ffn.0.0");
        await WaitForHostsAsync(gating.Node, "ffn.0.1");

        // A fresh node takes both uids over (no checkpoint of them): it adopts the published weights.
        await using var c = await TestNode.StartAsync(Host("c", true, "ffn.0.0", "ffn.0.1"), 64, b);
        for (int i = 0; i < 2; i++)
        {
            var backend = ExpertOf(c, $"ffn.0.{i}").Backend;
            Assert.Equal(trained[i], backend.UpdateCount);
            Assert.Equal(new WeightsLineage(WeightsLineage.Adopted, a.Node.PeerId.ToString(), trained[i]), backend.Lineage);
        }
        await WaitForHostsAsync(gating.Node, "ffn.0.0", c.Node.PeerId);
        await WaitForHostsAsync(gating.Node, "ffn.0.1", c.Node.PeerId);
        var after = await model.PredictAsync(texts, default);

        double worst = before.Zip(after).Max(p => p.First.Probabilities.Zip(p.Second.Probabilities).Max(q => Math.Abs(q.First - q.Second)));
        output.WriteLine($"largest difference of a probability over {texts.Length} test texts: {worst:E2}");
        Assert.True(worst <= 1e-6, $"predictions moved by {worst}");
        Assert.Equal(before.Select(p => p.Label), after.Select(p => p.Label));
        // The texts routed to ffn.0.x were answered by c, not by a fallback.
        var hops = after.SelectMany(p => p.Route).Where(h => h.Expert.StartsWith("ffn.0.", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(hops);
        Assert.All(hops, h => Assert.Equal((c.Node.PeerId.ToString(), "ok"), (h.Host, h.Outcome)));

        // /v1/status says where the weights came from.
        using var http = new HttpClient { BaseAddress = c.Http };
        var status = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync("/v1/status")).RootElement;
        var weights = status.GetProperty("experts")[0].GetProperty("weights");
        Assert.Equal(("adopted", a.Node.PeerId.ToString(), trained[0]), (weights.GetProperty("source").GetString(), weights.GetProperty("from").GetString(), weights.GetProperty("version").GetInt64()));
    }

    /// <summary>Trains a hosted expert directly on its backend: <paramref name="steps"/> steps on random data from <paramref name="seed"/>.</summary>
    private static void Train(TestNode node, string uid, int steps, int seed)
    {
        var random = new Random(seed);
        var backend = ExpertOf(node, uid).Backend;
        for (int s = 0; s < steps; s++)
        {
            using var input = Tensor.FromArray(Enumerable.Range(0, 8 * Dim).Select(_ => (float)random.NextDouble() - 0.5f).ToArray(), new TensorShape(8, Dim));
            using var gradient = Tensor.FromArray(Enumerable.Range(0, 8 * Dim).Select(_ => (float)random.NextDouble() - 0.5f).ToArray(), new TensorShape(8, Dim));
            backend.Backward(input, gradient).Dispose();
        }
    }

    [Fact]
    public async Task TwoReplicasTrainedApart_AfterReconciling_HoldTheSameWeights_TheirUpdateWeightedAverage()
    {
        await using var a = await TestNode.StartAsync(Host("a", true, "ffn.0.0"), 71);
        await using var b = await TestNode.StartAsync(Host("b", true, "ffn.0.0"), 72, a);
        await WaitForHostsAsync(a.Node, "ffn.0.0", a.Node.PeerId, b.Node.PeerId);
        Train(a, "ffn.0.0", 12, seed: 1);
        Train(b, "ffn.0.0", 4, seed: 2);
        using var wa = ExpertWeights.Of(ExpertOf(a, "ffn.0.0").Backend);
        using var wb = ExpertWeights.Of(ExpertOf(b, "ffn.0.0").Backend);
        Assert.False(wa.Matches(wb, 1e-3f));
        using var expected = ExpertWeights.Average([wa, wb], [12, 4], 16);

        // The follower publishes its snapshot, the leader averages it in, the follower takes the average.
        var (leader, follower) = string.CompareOrdinal(a.Node.PeerId.ToString(), b.Node.PeerId.ToString()) < 0 ? (a, b) : (b, a);
        await follower.Node.ReconcileAsync(default);
        await leader.Node.ReconcileAsync(default);
        await follower.Node.ReconcileAsync(default);

        using var ra = ExpertWeights.Of(ExpertOf(a, "ffn.0.0").Backend);
        using var rb = ExpertWeights.Of(ExpertOf(b, "ffn.0.0").Backend);
        Assert.True(ra.Matches(rb, 0f), "the replicas differ after reconciling");
        Assert.True(ra.Matches(expected, 1e-6f), "the replicas hold another average than 12:4");
        Assert.Equal((16L, 16L), (ExpertOf(a, "ffn.0.0").Backend.UpdateCount, ExpertOf(b, "ffn.0.0").Backend.UpdateCount));
        Assert.Equal(WeightsLineage.Averaged, ExpertOf(follower, "ffn.0.0").Backend.Lineage.Source);
        // Both now announce the same snapshot, and a further round changes nothing.
        Assert.Equal(ExpertOf(a, "ffn.0.0").CurrentSnapshot, ExpertOf(b, "ffn.0.0").CurrentSnapshot);
        await leader.Node.ReconcileAsync(default);
        await follower.Node.ReconcileAsync(default);
        using var again = ExpertWeights.Of(ExpertOf(a, "ffn.0.0").Backend);
        Assert.True(again.Matches(ra, 0f));

        // Answers through either replica are the same.
        var rows = Enumerable.Range(0, 4 * Dim).Select(i => (float)Math.Sin(i)).ToArray();
        using var x = Tensor.FromArray(rows, new TensorShape(4, Dim));
        using var ya = ExpertOf(a, "ffn.0.0").Backend.Forward(x);
        using var yb = ExpertOf(b, "ffn.0.0").Backend.Forward(x);
        Assert.Equal(ya.ToArray(), yb.ToArray());
    }

    [Fact]
    public async Task AFrozenReplica_TakesTheNewestSnapshotOfATrainedOne()
    {
        await using var a = await TestNode.StartAsync(Host("a", true, "ffn.0.0"), 81);
        await using var frozen = await TestNode.StartAsync(Host("f", false, "ffn.0.0"), 82, a);
        await WaitForHostsAsync(a.Node, "ffn.0.0", a.Node.PeerId, frozen.Node.PeerId);
        Train(a, "ffn.0.0", 6, seed: 3);
        await a.Node.PublishWeightsAsync(default);
        await frozen.Node.ReconcileAsync(default);
        using var wa = ExpertWeights.Of(ExpertOf(a, "ffn.0.0").Backend);
        using var wf = ExpertWeights.Of(ExpertOf(frozen, "ffn.0.0").Backend);
        Assert.True(wa.Matches(wf, 0f));
        Assert.Equal((6L, WeightsLineage.Adopted), (ExpertOf(frozen, "ffn.0.0").Backend.UpdateCount, ExpertOf(frozen, "ffn.0.0").Backend.Lineage.Source));
    }

    [Fact]
    public async Task AForgedAndATamperedSnapshot_AreRefused_AndAdoptionTakesTheNextOne()
    {
        await using var a = await TestNode.StartAsync(Host("a", true, "ffn.0.0"), 91);
        await using var holder = await TestNode.StartAsync(Host("h", false), 92, a);
        Train(a, "ffn.0.0", 5, seed: 4);
        var first = Assert.Single(await a.Node.PublishWeightsAsync(default)); // the holder takes a copy
        using var good = ExpertWeights.Of(ExpertOf(a, "ffn.0.0").Backend);
        Train(a, "ffn.0.0", 5, seed: 5);
        a.Options.Weights.Copies = 0; // the newer snapshot stays with a alone
        var second = Assert.Single(await a.Node.PublishWeightsAsync(default));

        // The newer snapshot's file is damaged on its only holder.
        await using (var file = new FileStream(second.Path, FileMode.Open, FileAccess.ReadWrite))
        {
            file.Position = file.Length - 1;
            file.WriteByte(0x7f);
        }
        // A peer announces a copy that claims a's signature over more updates than a made.
        var forged = second.Snapshot.Clone();
        forged.Updates = 1000;
        var record = new WeightsRecord { Snapshot = forged };
        record.Addresses.Add(holder.Node.ListenAddress.ToString());
        await holder.Node.Weights.DeclareAsync(PeerIdentity.FromSeed(99), [(ExpertUid.Parse("ffn.0.0"), record)], DateTimeOffset.UtcNow.AddMinutes(1), default);
        var found = (await a.Node.Weights.FindAsync([ExpertUid.Parse("ffn.0.0")], default)).Single().Value;
        Assert.Equal([1000L, 10L, 5L], found.Select(h => h.Snapshot.Updates));

        // A new replica of the uid refuses both and adopts the snapshot after them.
        await using var c = await TestNode.StartAsync(Host("c", true, "ffn.0.0"), 93, a);
        var backend = ExpertOf(c, "ffn.0.0").Backend;
        Assert.Equal((5L, WeightsLineage.Adopted), (backend.UpdateCount, backend.Lineage.Source));
        using var adopted = ExpertWeights.Of(backend);
        Assert.True(adopted.Matches(good, 0f));
        Assert.Equal(first.Sha256, ExpertOf(c, "ffn.0.0").CurrentSnapshot);
    }

    [Fact]
    public async Task WithAdoptOrphans_APatternTakesTheUidWhoseHostLeftItsWeights_AndAdoptsThem()
    {
        var gone = await TestNode.StartAsync(Host("a", true, "ffn.1.1"), 101);
        await using var holder = await TestNode.StartAsync(Host("h", false), 102, gone);
        Train(gone, "ffn.1.1", 7, seed: 6);
        await gone.Node.PublishWeightsAsync(default); // the holder takes a copy
        await gone.DisposeAsync();
        await WaitForHostsAsync(holder.Node, "ffn.1.1");

        var options = Host("v", true);
        options.Experts = [new ExpertHostingOptions { Type = "ffn", Pattern = "ffn.[0:2].[0:2]", Count = 1, HiddenDim = Dim, Optimizer = "adam", LearningRate = 3e-3f }];
        options.Weights.AdoptOrphans = true;
        await using var volunteer = await TestNode.StartAsync(options, 103, holder);
        var expert = Assert.Single(volunteer.Node.Experts.Values);
        Assert.Equal("ffn.1.1", expert.Uid.Value);
        Assert.Equal((7L, WeightsLineage.Adopted), (expert.Backend.UpdateCount, expert.Backend.Lineage.Source));
    }

    [Fact]
    public async Task AnOfferOfASnapshotTheCallerDidNotSign_OrTooLarge_OrMalformed_IsRefused_NamingWhy_AndTheNodeServesOn()
    {
        var options = Host("a", true, "ffn.0.0");
        options.Weights.MaxSnapshotBytes = 65536;
        await using var a = await TestNode.StartAsync(options, 111);
        await using var b = await TestNode.StartAsync(Host("b", true, "ffn.0.1"), 112, a);
        async Task<string> Offer(WeightsOfferRequest offer)
        {
            using var response = await b.Node.Transport.CallAsync(a.Endpoint,
                Protocol.Rpc.PeerRequest.Create(MeshNode.WeightsOfferMethod, offer, default, DateTimeOffset.UtcNow.AddSeconds(30)), default);
            Assert.True(response.IsOk, response.ToString());
            var answer = response.ParseHeader(WeightsOfferResponse.Parser);
            Assert.False(answer.Taken);
            return answer.Reason;
        }
        var sha = new string('a', 64);
        WeightsOfferRequest Of(WeightsSnapshot snapshot)
        {
            var offer = new WeightsOfferRequest { Snapshot = snapshot };
            offer.Addresses.Add(b.Node.ListenAddress.ToString());
            return offer;
        }
        var others = WeightsSnapshots.Sign("ffn.0.1", 3, 0, sha, 100, "schema", DateTimeOffset.UtcNow, PeerIdentity.FromSeed(99));
        Assert.Contains("only snapshots it signed itself", await Offer(Of(others)));
        var large = WeightsSnapshots.Sign("ffn.0.1", 3, 0, sha, 1 << 20, "schema", DateTimeOffset.UtcNow, PeerIdentity.FromSeed(112));
        Assert.Contains("at most 65536 (Weights:MaxSnapshotBytes)", await Offer(Of(large)));
        var tampered = WeightsSnapshots.Sign("ffn.0.1", 3, 0, sha, 100, "schema", DateTimeOffset.UtcNow, PeerIdentity.FromSeed(112));
        tampered.Updates = 4;
        Assert.Contains("does not verify", await Offer(Of(tampered)));
        Assert.Contains("no snapshot", await Offer(new WeightsOfferRequest()));
        var badUid = WeightsSnapshots.Sign("not a uid", 3, 0, sha, 100, "schema", DateTimeOffset.UtcNow, PeerIdentity.FromSeed(112));
        Assert.Contains("is not a uid", await Offer(Of(badUid)));
        // A snapshot b signed whose bytes b does not have: the fetch fails and says so.
        var missing = WeightsSnapshots.Sign("ffn.0.1", 3, 0, sha, 100, "schema", DateTimeOffset.UtcNow, PeerIdentity.FromSeed(112));
        Assert.Contains("NotFound", await Offer(Of(missing)));
        Assert.Equal((0, 0L), a.Node.HeldSnapshots);

        // a still serves its expert.
        Train(b, "ffn.0.1", 2, seed: 8);
        Assert.Single(await b.Node.PublishWeightsAsync(default));
        var copies = (await b.Node.Weights.FindAsync([ExpertUid.Parse("ffn.0.1")], default)).Single().Value;
        Assert.Contains(copies, h => h.Holder == a.Node.PeerId);
    }
}
