using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.InMemory;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Testing;

namespace MoEMesh.Protocol.Tests;

public class InMemoryNetworkTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(20);
    private readonly ManualTimeProvider _time = new();
    private readonly InMemoryNetwork _network;
    private readonly PeerAddress _a = new("a", 1), _b = new("b", 1);
    private readonly IPeerTransport _fromA;
    private readonly TaskCompletionSource _handlerStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _handlerCancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private PeerId _callerSeen;

    public InMemoryNetworkTests()
    {
        _network = new InMemoryNetwork(_time, seed: 1);
        var routerB = new PeerRouter(_time)
            .Map("echo", (request, _) =>
            {
                _callerSeen = request.Caller;
                return ValueTask.FromResult(PeerResponse.Ok(payload: request.Payload.ToArray()));
            })
            .Map("hang", async (_, token) =>
            {
                _handlerStarted.TrySetResult();
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, _time, token);
                }
                finally
                {
                    _handlerCancelled.TrySetResult();
                }
                return PeerResponse.Ok();
            });
        _fromA = _network.Join(PeerIdentity.FromSeed(1).PeerId, _a, new PeerRouter(_time));
        _network.Join(PeerIdentity.FromSeed(2).PeerId, _b, routerB);
    }

    private PeerRequest Request(string method, TimeSpan timeout) => new(method, default, new byte[] { 4, 2 }, _time.GetUtcNow() + timeout);

    [Fact]
    public async Task Call_HealthyLink_AnswersWithCallerAuthenticated()
    {
        using var response = await _fromA.CallAsync(new PeerEndpoint(_b), Request("echo", TimeSpan.FromSeconds(1)), default);
        Assert.True(response.IsOk);
        Assert.Equal(new byte[] { 4, 2 }, response.Payload.ToArray());
        Assert.Equal(PeerIdentity.FromSeed(1).PeerId, _callerSeen);
    }

    [Fact]
    public async Task Delay_HoldsTheAnswerUntilTheClockMoves()
    {
        _network.SetFaults(_a, _b, new LinkFaults(Delay: TimeSpan.FromMilliseconds(100)));
        var call = _fromA.CallAsync(new PeerEndpoint(_b), Request("echo", TimeSpan.FromSeconds(1)), default);
        using var limit = new CancellationTokenSource(Bound);
        await _time.WaitForTimersAsync(2, limit.Token); // the call's deadline and the link delay
        Assert.False(call.IsCompleted);
        _time.Advance(TimeSpan.FromMilliseconds(100));
        using var response = await call.WaitAsync(Bound);
        Assert.True(response.IsOk);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task DroppedOrPartitioned_TimesOutAtTheDeadline(bool partition)
    {
        if (partition) _network.Partition([_a], [_b]);
        else _network.SetFaults(_a, _b, new LinkFaults(DropRate: 1));
        var call = _fromA.CallAsync(new PeerEndpoint(_b), Request("echo", TimeSpan.FromSeconds(2)), default);
        using var limit = new CancellationTokenSource(Bound);
        await _time.WaitForTimersAsync(1, limit.Token); // the call's deadline; a lost message arms no timer of its own
        _time.Advance(TimeSpan.FromSeconds(2));
        using var response = await call.WaitAsync(Bound);
        Assert.Equal(StatusCode.DeadlineExceeded, response.Status);

        _network.Heal();
        using var healed = await _fromA.CallAsync(new PeerEndpoint(_b), Request("echo", TimeSpan.FromSeconds(1)), default);
        Assert.True(healed.IsOk);
    }

    [Fact]
    public async Task KilledNode_RefusesAtOnce_AndAnswersAfterRevive()
    {
        _network.Kill(_b);
        using (var refused = await _fromA.CallAsync(new PeerEndpoint(_b), Request("echo", TimeSpan.FromSeconds(1)), default))
        {
            Assert.Equal(StatusCode.Unavailable, refused.Status);
            Assert.Contains("connection refused", refused.Message);
        }
        _network.Revive(_b);
        using var answered = await _fromA.CallAsync(new PeerEndpoint(_b), Request("echo", TimeSpan.FromSeconds(1)), default);
        Assert.True(answered.IsOk);
    }

    [Fact]
    public async Task KilledMidCall_IsUnavailable_AndTheHandlerIsStopped()
    {
        var call = _fromA.CallAsync(new PeerEndpoint(_b), Request("hang", TimeSpan.FromSeconds(10)), default);
        await _handlerStarted.Task.WaitAsync(Bound);
        _network.Kill(_b);
        using var response = await call.WaitAsync(Bound);
        Assert.Equal(StatusCode.Unavailable, response.Status);
        Assert.Contains("stopped", response.Message);
        await _handlerCancelled.Task.WaitAsync(Bound);
    }

    [Fact]
    public async Task WrongExpectedPeer_IsUnavailable()
    {
        using var response = await _fromA.CallAsync(new PeerEndpoint(_b, PeerIdentity.FromSeed(3).PeerId), Request("echo", TimeSpan.FromSeconds(1)), default);
        Assert.Equal(StatusCode.Unavailable, response.Status);
    }
}
