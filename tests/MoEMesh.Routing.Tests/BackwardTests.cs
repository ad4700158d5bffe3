using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;
using MoEMesh.Tensors;
using MoEMesh.Testing;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Tests;

/// <summary>Backward across the network, on a manual clock with fake experts y = s·x.</summary>
public sealed class BackwardTests
{
    private static readonly ExpertUid A = ExpertUid.Parse("ffn.0"), B = ExpertUid.Parse("ffn.1");

    private static ExpertHostInfo Host(ExpertUid uid, string host, int seed) =>
        new(uid, PeerIdentity.FromSeed(seed).PeerId, [new PeerAddress(host, 7000)], "ffn", "h", new ExpertLoad(), 0, DateTimeOffset.MaxValue);

    private static (ManualTimeProvider Time, FakeExperts Remote, ExpertFanOut FanOut, FanOutRequest Request) Rig(FakeBehaviour a, FakeBehaviour b, Tensor input)
    {
        var time = new ManualTimeProvider();
        var options = new RoutingOptions();
        var remote = new FakeExperts(time).With("a", "ffn.0", a).With("b", "ffn.1", b);
        var fanOut = new ExpertFanOut(remote, null, new PeerHealth(options, time), options, time);
        var request = new FanOutRequest
        {
            Input = input,
            Choices = [[new(A, 0.5f), new(B, 0.5f)], [new(A, 0.25f), new(B, 0.75f)]],
            Hosts = new Dictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> { [A] = [Host(A, "a", 1)], [B] = [Host(B, "b", 2)] },
        };
        return (time, remote, fanOut, request);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task InputGradient_IsTheWeightedSumOfEachExpertsInputGradient_AndAlignmentIsGradDotOutput(bool frozen)
    {
        using var input = Tensor.FromArray([1f, 2f, 3f, 4f], new TensorShape(2, 2));
        var (_, remote, fanOut, request) = Rig(new(Scale: 1f), new(Scale: 10f), input);
        using var forward = await fanOut.ForwardAsync(request, default);
        using var gradient = Tensor.FromArray([1f, 1f, 2f, 0f], new TensorShape(2, 2));

        using var backward = await fanOut.BackwardAsync(forward, gradient, frozen, default);

        // Frozen or not, the same gradient comes back; frozen, every call asked for it alone.
        Assert.Equal(frozen ? 2 : 0, remote.FrozenBackwardCalls);

        // Sample 0: (0.5·1 + 0.5·10)·g = 5.5·g; sample 1: (0.25·1 + 0.75·10)·g = 7.75·g.
        Assert.Equal([5.5f, 5.5f, 15.5f, 0f], backward.InputGradient.ToArray());
        // ⟨g, y_A⟩ and ⟨g, y_B⟩ per sample: y_A = x, y_B = 10x.
        Assert.Equal([3f, 30f], backward.Alignment[0]);
        Assert.Equal([6f, 60f], backward.Alignment[1]);
        Assert.Equal(2, remote.BackwardCalls.Count);
        Assert.All(backward.Incomplete, Assert.False);
    }

    [Fact]
    public async Task SlowExpertInBackward_IsCutAfterGrace_AndTheOthersGradientStands()
    {
        using var input = Tensor.FromArray([1f, 2f, 3f, 4f], new TensorShape(2, 2));
        var (time, remote, fanOut, request) = Rig(new(Scale: 1f), new(Scale: 10f, BackwardDelay: TimeSpan.FromSeconds(30)), input);
        using var forward = await fanOut.ForwardAsync(request, default);
        using var gradient = Tensor.FromArray([1f, 1f, 1f, 1f], new TensorShape(2, 2));

        var running = fanOut.BackwardAsync(forward, gradient, frozen: false, default);
        await time.WaitForTimersAsync(3, new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
        time.Advance(TimeSpan.FromMilliseconds(200));
        using var backward = await running.WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal([0.5f, 0.5f, 0.25f, 0.25f], backward.InputGradient.ToArray());
        Assert.Equal([("b", "ffn.1")], remote.Cancelled);
        Assert.Contains(backward.Trace, t => t.Uid == B && t.Outcome == CallOutcome.Timeout);
    }

    [Fact]
    public async Task EveryExpertOfASampleFailsBackward_TheSampleIsIncompleteWithZeroGradient()
    {
        using var input = Tensor.FromArray([1f, 2f, 3f, 4f], new TensorShape(2, 2));
        var (_, _, fanOut, request) = Rig(new(BackwardFail: CallOutcome.Unreachable), new(BackwardFail: CallOutcome.Rejected), input);
        using var forward = await fanOut.ForwardAsync(request, default);
        using var gradient = Tensor.FromArray([1f, 1f, 1f, 1f], new TensorShape(2, 2));
        using var backward = await fanOut.BackwardAsync(forward, gradient, frozen: false, default);
        Assert.Equal([true, true], backward.Incomplete);
        Assert.All(backward.InputGradient.ToArray(), v => Assert.Equal(0f, v));
    }
}
