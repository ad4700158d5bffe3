using MoEMesh.Experts;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Codec;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Node.Tests;

/// <summary>Nodes in one process over real sockets: find experts through the DHT, call them, train them.</summary>
public sealed class ExpertServingTests : IDisposable
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private static DateTimeOffset Deadline => DateTimeOffset.UtcNow + TimeSpan.FromSeconds(10);

    private static Tensor Input(int rows, int seed, int width = 8)
    {
        var random = new Random(seed);
        var values = new float[rows * width];
        for (int i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() * 2 - 1);
        return Tensor.FromArray(values, new TensorShape(rows, width));
    }

    [Fact]
    public async Task Client_FindsHostedExpertsThroughTheDht_AndForwardMatchesTheSameWeightsComputedLocally()
    {
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.0.0"), TestNode.Ffn("ffn.0.1")), 1);
        await using var client = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 2, host);
        using var limit = new CancellationTokenSource(Bound);

        var uids = new[] { ExpertUid.Parse("ffn.0.0"), ExpertUid.Parse("ffn.0.1"), ExpertUid.Parse("ffn.9.9") };
        await TestNode.WaitForExpertsAsync(client.Node, "ffn.0.0", "ffn.0.1");
        var found = await client.Node.Directory.FindAsync(uids, limit.Token);
        var hostOf = Assert.Single(found[uids[0]]);
        Assert.Equal(host.Node.PeerId, hostOf.Host);
        Assert.Single(found[uids[1]]);
        Assert.Empty(found[uids[2]]);

        var invoker = new RemoteExpertInvoker(client.Node.Transport);
        using var input = Input(5, 3);
        var remote = await invoker.ForwardAsync(new ExpertTarget(uids[0], hostOf.Endpoint), input, Compression.None, Deadline, limit.Token);
        Assert.True(remote.IsOk, remote.ToString());
        using var output = remote.Value!;
        using var expected = TestNode.Twin("ffn.0.0").Forward(input);
        Assert.Equal(expected.ToArray(), output.ToArray());
    }

    [Fact]
    public async Task AnEmptyBatch_IsRefusedWithOurOwnMessage()
    {
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.2.0")), 5);
        var invoker = new RemoteExpertInvoker(host.Node.Transport);
        using var empty = Tensor.Zeros(0, 8);
        var result = await invoker.ForwardAsync(new ExpertTarget(ExpertUid.Parse("ffn.2.0"), host.Endpoint), empty, Compression.None, Deadline, default);
        Assert.False(result.IsOk);
        Assert.Contains("input of expert ffn.2.0: the batch has no rows (shape [0, 8]); send at least one.", result.ToString());
    }

    [Fact]
    public async Task Backward_StepsTheHostsOptimizer_AndChangesLaterOutputs()
    {
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.1.0")), 3);
        using var limit = new CancellationTokenSource(Bound);
        var invoker = new RemoteExpertInvoker(host.Node.Transport);
        var target = new ExpertTarget(ExpertUid.Parse("ffn.1.0"), host.Endpoint);
        using var input = Input(4, 5);
        using var gradient = Input(4, 6);
        using var before = (await invoker.ForwardAsync(target, input, Compression.None, Deadline, limit.Token)).Value!;

        var backward = await invoker.BackwardAsync(target, input, gradient, frozen: false, Compression.None, Deadline, limit.Token);
        Assert.True(backward.IsOk, backward.ToString());
        using var inputGradient = backward.Value!;
        Assert.Equal(input.Shape, inputGradient.Shape);
        var info = await invoker.InfoAsync(target, Deadline, limit.Token);
        Assert.Equal(1, info.Value!.Version);
        using var after = (await invoker.ForwardAsync(target, input, Compression.None, Deadline, limit.Token)).Value!;
        Assert.NotEqual(before.ToArray(), after.ToArray());
    }

    [Fact]
    public async Task Checkpoint_WrittenOnStop_AndRestoredIntoANewNode_GivesTheSameOutputs()
    {
        var checkpoints = _folder.Sub("ck");
        var target = ExpertUid.Parse("ffn.2.0");
        using var input = Input(3, 7);
        using var gradient = Input(3, 8);
        float[] trained;
        using var limit = new CancellationTokenSource(Bound);
        await using (var first = await TestNode.StartAsync(TestNode.Configure(checkpoints, TestNode.Ffn("ffn.2.0")), 4))
        {
            var invoker = new RemoteExpertInvoker(first.Node.Transport);
            var at = new ExpertTarget(target, first.Endpoint);
            (await invoker.BackwardAsync(at, input, gradient, frozen: false, Compression.None, Deadline, limit.Token)).Value!.Dispose();
            using var output = (await invoker.ForwardAsync(at, input, Compression.None, Deadline, limit.Token)).Value!;
            trained = output.ToArray();
        }
        Assert.True(File.Exists(Path.Combine(checkpoints, "ffn.2.0", "checkpoint.json")));

        var weights = Directory.GetFiles(Path.Combine(checkpoints, "ffn.2.0"), "weights.*").Single();
        var manifest = Path.Combine(checkpoints, "ffn.2.0", "checkpoint.json");
        var (writtenWeights, writtenManifest) = (File.ReadAllBytes(weights), File.ReadAllText(manifest));
        File.SetLastWriteTimeUtc(weights, new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc));

        await using (var second = await TestNode.StartAsync(TestNode.Configure(checkpoints, TestNode.Ffn("ffn.2.0")), 5))
        {
            var again = new RemoteExpertInvoker(second.Node.Transport);
            var there = new ExpertTarget(target, second.Endpoint);
            using var restored = (await again.ForwardAsync(there, input, Compression.None, Deadline, limit.Token)).Value!;
            Assert.Equal(trained, restored.ToArray());
            Assert.Equal(1, (await again.InfoAsync(there, Deadline, limit.Token)).Value!.Version);
        }
        // It did not train: its checkpoint was not written again (the optimizer state was never read).
        Assert.Equal(weights, Directory.GetFiles(Path.Combine(checkpoints, "ffn.2.0"), "weights.*").Single());
        Assert.Equal(new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc), File.GetLastWriteTimeUtc(weights));
        Assert.Equal(writtenWeights, File.ReadAllBytes(weights));
        Assert.Equal(writtenManifest, File.ReadAllText(manifest));

        // A third start trains on from where the first left off: one more step makes update 2.
        await using var third = await TestNode.StartAsync(TestNode.Configure(checkpoints, TestNode.Ffn("ffn.2.0")), 6);
        var thirdInvoker = new RemoteExpertInvoker(third.Node.Transport);
        var at3 = new ExpertTarget(target, third.Endpoint);
        (await thirdInvoker.BackwardAsync(at3, input, gradient, frozen: false, Compression.None, Deadline, limit.Token)).Value!.Dispose();
        Assert.Equal(2, (await thirdInvoker.InfoAsync(at3, Deadline, limit.Token)).Value!.Version);
    }

    [Fact]
    public async Task BadInput_IsAnsweredWithAStatusNamingTheProblem_AndTheNodeKeepsServing()
    {
        var options = TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.3.0"));
        options.Batching.MaxBatchRows = 16;
        await using var host = await TestNode.StartAsync(options, 6);
        using var limit = new CancellationTokenSource(Bound);
        var transport = host.Node.Transport;

        async Task<PeerResponse> Forward(string uid, Tensor tensor, DType dtype = DType.F32)
        {
            var (headers, payload) = TensorCodec.Encode([(tensor, Compression.None)], dtype);
            using (payload)
                return await transport.CallAsync(host.Endpoint, PeerRequest.Create(RemoteExpertInvoker.ForwardMethod, new ForwardRequest { Uid = uid, Input = headers[0] }, payload.Memory, Deadline), limit.Token);
        }

        using var good = Input(2, 1);
        using var unknown = await Forward("ffn.7.7", good);
        Assert.Equal(StatusCode.NotFound, unknown.Status);
        Assert.Contains("'ffn.7.7' is not hosted on this node", unknown.Message);
        Assert.Contains("ffn.3.0", unknown.Message);

        using var narrow = Input(2, 1, width: 5);
        using var shape = await Forward("ffn.3.0", narrow);
        Assert.Equal(StatusCode.InvalidArgument, shape.Status);
        Assert.Contains("expected shape [batch, 8], got [2, 5]", shape.Message);

        using var dtype = await Forward("ffn.3.0", good, DType.F16);
        Assert.Equal(StatusCode.InvalidArgument, dtype.Status);
        Assert.Contains("expected dtype F32, got F16", dtype.Message);

        using var poisoned = Input(2, 1);
        poisoned.Span[3] = float.NaN;
        using var nan = await Forward("ffn.3.0", poisoned);
        Assert.Equal(StatusCode.InvalidArgument, nan.Status);
        Assert.Contains("contains NaN or Inf", nan.Message);

        using var huge = Input(17, 1);
        using var rows = await Forward("ffn.3.0", huge);
        Assert.Equal(StatusCode.ResourceExhausted, rows.Status);
        Assert.Contains("17 rows exceed this node's batch limit of 16", rows.Message);

        using var fine = await Forward("ffn.3.0", good);
        Assert.True(fine.IsOk, fine.ToString());
    }

    [Fact]
    public async Task Backward_FromAPeerTheHostDoesNotAllow_IsPermissionDenied_AndLeavesTheWeights()
    {
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.5.0")), 8);
        await using var stranger = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 9);
        using var limit = new CancellationTokenSource(Bound);
        var invoker = new RemoteExpertInvoker(stranger.Node.Transport);
        var target = new ExpertTarget(ExpertUid.Parse("ffn.5.0"), host.Endpoint);
        using var input = Input(4, 5);
        using var gradient = Input(4, 6);
        using var before = (await invoker.ForwardAsync(target, input, Compression.None, Deadline, limit.Token)).Value!;

        var backward = await invoker.BackwardAsync(target, input, gradient, frozen: false, Compression.None, Deadline, limit.Token);
        Assert.Equal(CallOutcome.Rejected, backward.Outcome);
        Assert.Contains("PermissionDenied", backward.Error);
        Assert.Contains(stranger.Node.PeerId.ToString(), backward.Error);
        Assert.Contains("--training-peers", backward.Error);

        Assert.Equal(0, (await invoker.InfoAsync(target, Deadline, limit.Token)).Value!.Version);
        using var after = (await invoker.ForwardAsync(target, input, Compression.None, Deadline, limit.Token)).Value!;
        Assert.Equal(before.ToArray(), after.ToArray());
    }

    [Fact]
    public async Task FrozenBackward_FromAnyPeer_GivesTheInputGradient_AndLeavesTheWeights()
    {
        await using var host = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.5.2")), 20);
        await using var stranger = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 21);
        using var limit = new CancellationTokenSource(Bound);
        var invoker = new RemoteExpertInvoker(stranger.Node.Transport);
        var target = new ExpertTarget(ExpertUid.Parse("ffn.5.2"), host.Endpoint);
        using var input = Input(4, 5);
        using var gradient = Input(4, 6);
        using var before = (await invoker.ForwardAsync(target, input, Compression.None, Deadline, limit.Token)).Value!;

        var frozen = await invoker.BackwardAsync(target, input, gradient, frozen: true, Compression.None, Deadline, limit.Token);
        Assert.True(frozen.IsOk, frozen.ToString());
        Assert.Equal(input.Shape, frozen.Value!.Shape);
        Assert.Contains(frozen.Value.ToArray(), v => v != 0f);
        frozen.Value.Dispose();

        Assert.Equal(0, (await invoker.InfoAsync(target, Deadline, limit.Token)).Value!.Version);
        using var after = (await invoker.ForwardAsync(target, input, Compression.None, Deadline, limit.Token)).Value!;
        Assert.Equal(before.ToArray(), after.ToArray());
    }

    [Fact]
    public async Task FrozenFlagOnExpertBackward_TheEarlierWay_StillMovesNoWeight_EvenWhereTrainingIsOpen()
    {
        var options = TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.5.3"));
        options.Serving.OpenTraining = true;
        await using var host = await TestNode.StartAsync(options, 22);
        await using var older = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 23);
        using var limit = new CancellationTokenSource(Bound);
        using var input = Input(4, 5);
        using var gradient = Input(4, 6);
        var (headers, payload) = TensorCodec.Encode([(input, Compression.None), (gradient, Compression.None)]);
        using (payload)
        {
#pragma warning disable CS0612 // the deprecated flag is what a trainer from before expert.input_gradient sends
            var request = new BackwardRequest { Uid = "ffn.5.3", Input = headers[0], OutputGradient = headers[1], Frozen = true };
#pragma warning restore CS0612
            using var response = await older.Node.Transport.CallAsync(host.Endpoint, PeerRequest.Create(RemoteExpertInvoker.BackwardMethod, request, payload.Memory, Deadline), limit.Token);
            Assert.True(response.IsOk, response.ToString());
        }
        var invoker = new RemoteExpertInvoker(older.Node.Transport);
        Assert.Equal(0, (await invoker.InfoAsync(new ExpertTarget(ExpertUid.Parse("ffn.5.3"), host.Endpoint), Deadline, limit.Token)).Value!.Version);
    }

    [Fact]
    public async Task Backward_FromAPeerInTrainingPeers_Trains()
    {
        var trainer = PeerIdentity.FromSeed(11).PeerId;
        var options = TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.5.1"));
        options.Serving.TrainingPeers = [trainer.ToString()];
        await using var host = await TestNode.StartAsync(options, 10);
        await using var client = await TestNode.StartAsync(TestNode.Configure(_folder.Sub("b")), 11);
        Assert.Equal(trainer, client.Node.PeerId);
        using var limit = new CancellationTokenSource(Bound);
        var invoker = new RemoteExpertInvoker(client.Node.Transport);
        var target = new ExpertTarget(ExpertUid.Parse("ffn.5.1"), host.Endpoint);
        using var input = Input(4, 5);
        using var gradient = Input(4, 6);

        var backward = await invoker.BackwardAsync(target, input, gradient, frozen: false, Compression.None, Deadline, limit.Token);
        Assert.True(backward.IsOk, backward.ToString());
        backward.Value!.Dispose();
        Assert.Equal(1, (await invoker.InfoAsync(target, Deadline, limit.Token)).Value!.Version);
    }

    [Theory]
    [InlineData(100_000, StatusCode.ResourceExhausted, "100000 rows exceed this node's batch limit of 16")]
    [InlineData(1 << 28, StatusCode.InvalidArgument, "holds more than")]
    [InlineData(-2, StatusCode.InvalidArgument, "dimensions must be zero or positive")]
    public async Task DeclaredShape_IsCheckedBeforeAnythingIsDecoded(int rows, StatusCode status, string expected)
    {
        var options = TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.6.0"));
        options.Batching.MaxBatchRows = 16;
        await using var host = await TestNode.StartAsync(options, 12);
        using var limit = new CancellationTokenSource(Bound);
        // The header declares far more than the 64 bytes sent: the node must refuse on the header alone.
        var header = new TensorHeader { Dtype = DType.F32, Compression = Compression.None, Offset = 0, Length = 64 };
        header.Shape.Add([rows, 8]);
        var request = PeerRequest.Create(RemoteExpertInvoker.ForwardMethod, new ForwardRequest { Uid = "ffn.6.0", Input = header }, new byte[64], Deadline);
        using var response = await host.Node.Transport.CallAsync(host.Endpoint, request, limit.Token);
        Assert.Equal(status, response.Status);
        Assert.Contains(expected, response.Message);
    }

    [Fact]
    public async Task NonFiniteCheck_CanBeSwitchedOff()
    {
        var options = TestNode.Configure(_folder.Sub("a"), TestNode.Ffn("ffn.4.0"));
        options.Serving.RejectNonFinite = false;
        await using var host = await TestNode.StartAsync(options, 7);
        var invoker = new RemoteExpertInvoker(host.Node.Transport);
        using var poisoned = Input(2, 1);
        poisoned.Span[0] = float.PositiveInfinity;
        var result = await invoker.ForwardAsync(new ExpertTarget(ExpertUid.Parse("ffn.4.0"), host.Endpoint), poisoned, Compression.None, Deadline, default);
        Assert.True(result.IsOk, result.ToString());
        result.Value!.Dispose();
    }
}
