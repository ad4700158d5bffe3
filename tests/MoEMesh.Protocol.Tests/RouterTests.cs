using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Testing;

namespace MoEMesh.Protocol.Tests;

public class RouterTests
{
    [Fact]
    public async Task Dispatch_DeadlinePassedBeforeStart_DropsTheWork()
    {
        var time = new ManualTimeProvider();
        bool ran = false;
        var router = new PeerRouter(time).Map("work", (_, _) =>
        {
            ran = true;
            return ValueTask.FromResult(PeerResponse.Ok());
        });
        var request = new PeerRequest("work", default, default, time.GetUtcNow() + TimeSpan.FromMilliseconds(5));
        time.Advance(TimeSpan.FromMilliseconds(5));
        using var response = await router.DispatchAsync(request, default);
        Assert.Equal(StatusCode.DeadlineExceeded, response.Status);
        Assert.Contains("dropped", response.Message);
        Assert.False(ran);
    }

    [Fact]
    public async Task Dispatch_PeerRpcException_KeepsItsStatus()
    {
        var time = new ManualTimeProvider();
        var router = new PeerRouter(time).Map("full", (_, _) => throw new PeerRpcException(StatusCode.ResourceExhausted, "batch of 5000 rows exceeds 4096"));
        using var response = await router.DispatchAsync(new PeerRequest("full", default, default, time.GetUtcNow() + TimeSpan.FromSeconds(1)), default);
        Assert.Equal(StatusCode.ResourceExhausted, response.Status);
        Assert.Equal("batch of 5000 rows exceeds 4096", response.Message);
    }

    [Fact]
    public void Map_SameMethodTwice_IsRejected()
    {
        var router = new PeerRouter(TimeProvider.System).Map("a", (_, _) => ValueTask.FromResult(PeerResponse.Ok()));
        Assert.Throws<ArgumentException>(() => router.Map("a", (_, _) => ValueTask.FromResult(PeerResponse.Ok())));
    }
}

public class CallOutcomeTests
{
    [Theory]
    [InlineData(StatusCode.Ok, CallOutcome.Ok)]
    [InlineData(StatusCode.DeadlineExceeded, CallOutcome.Timeout)]
    [InlineData(StatusCode.Cancelled, CallOutcome.Timeout)]
    [InlineData(StatusCode.Unavailable, CallOutcome.Unreachable)]
    [InlineData(StatusCode.InvalidArgument, CallOutcome.Rejected)]
    [InlineData(StatusCode.NotFound, CallOutcome.Rejected)]
    [InlineData(StatusCode.ResourceExhausted, CallOutcome.Rejected)]
    [InlineData(StatusCode.PermissionDenied, CallOutcome.Rejected)]
    [InlineData(StatusCode.Internal, CallOutcome.Rejected)]
    public void EveryStatus_HasOneOutcome_ForEveryCaller(StatusCode status, CallOutcome outcome) => Assert.Equal(outcome, CallOutcomes.Of(status));
}
