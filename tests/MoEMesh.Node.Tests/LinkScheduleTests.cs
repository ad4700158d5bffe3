using MoEMesh.Node.Localnet.Wan;

namespace MoEMesh.Node.Tests;

/// <summary>The schedule a <c>--wan</c> link lets packets go by, and the shape it is given.</summary>
public sealed class LinkScheduleTests
{
    private static readonly TimeSpan Start = TimeSpan.FromHours(3);

    private static (TimeSpan Queued, TimeSpan? Released)[] Run(LinkShape shape, int packets, TimeSpan gap, int seed = 7)
    {
        var schedule = new LinkSchedule(shape, new Random(seed));
        return Enumerable.Range(0, packets).Select(i => Start + gap * i).Select(now => (now, schedule.Release(now))).ToArray();
    }

    [Fact]
    public void WithoutJitter_EveryPacketWaitsExactlyTheDelay()
    {
        var shape = new LinkShape(TimeSpan.FromMilliseconds(50), TimeSpan.Zero, 0);
        Assert.All(Run(shape, 1000, TimeSpan.FromMilliseconds(1)), p => Assert.Equal(p.Queued + shape.Delay, p.Released));
    }

    [Fact]
    public void Jitter_SpreadsTheDelayEvenlyWithinItsBounds_AndKeepsTheOrder()
    {
        var shape = new LinkShape(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(10), 0);
        // Packets far apart: none is held back by the one before it.
        var spaced = Run(shape, 10_000, TimeSpan.FromSeconds(1));
        var waits = spaced.Select(p => (p.Released!.Value - p.Queued).TotalMilliseconds).ToArray();
        Assert.All(waits, w => Assert.InRange(w, 40, 60));
        Assert.InRange(waits.Average(), 49.5, 50.5);
        Assert.True(waits.Count(w => w < 45) > 2000 && waits.Count(w => w > 55) > 2000, "the jitter reaches both ends of its range");

        // Packets close together: a later one never leaves before an earlier one.
        var dense = Run(shape, 10_000, TimeSpan.FromMilliseconds(0.1)).Select(p => p.Released!.Value).ToArray();
        Assert.Equal(dense.Order(), dense);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.01)]
    [InlineData(0.3)]
    public void Loss_DropsThatShareOfPackets(double loss)
    {
        var packets = Run(new LinkShape(TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(1), loss), 100_000, TimeSpan.FromMilliseconds(1));
        double lost = packets.Count(p => p.Released is null) / (double)packets.Length;
        Assert.InRange(lost, loss * 0.9, loss * 1.1);
    }

    [Theory]
    [InlineData(-1, 0, 0, "--delay must be between 0 and 500ms")]
    [InlineData(600, 0, 0, "--delay must be between 0 and 500ms; got 600 ms.")]
    [InlineData(50, 60, 0, "--jitter must be between 0 and the delay (50 ms); got 60 ms.")]
    [InlineData(50, 10, 1, "--loss must be a share from 0% to below 100%; got 100%.")]
    [InlineData(50, 10, -0.01, "--loss must be a share from 0% to below 100%; got -1%.")]
    public void AShapeThatCannotBe_NamesTheFlag(double delayMs, double jitterMs, double loss, string problem)
    {
        var shape = new LinkShape(TimeSpan.FromMilliseconds(delayMs), TimeSpan.FromMilliseconds(jitterMs), loss);
        Assert.StartsWith(problem, shape.Problem);
    }

    [Fact]
    public void TheDefault_IsAContinentalLink_AndItsArgumentsSayIt()
    {
        Assert.Null(LinkShape.Default.Problem);
        Assert.Equal("50 ms ± 10 ms, 1 % loss", LinkShape.Default.ToString());
        Assert.Equal(["--delay", "50ms", "--jitter", "10ms", "--loss", "1%"], LinkShape.Default.Arguments());
    }

    [Theory]
    [InlineData("1%", 0.01)]
    [InlineData("0.5%", 0.005)]
    [InlineData("0", 0.0)]
    [InlineData("0%", 0.0)]
    [InlineData("1", null)]
    [InlineData("lots", null)]
    public void Loss_IsReadAsAPercentage(string text, double? share)
    {
        var parsed = LinkShape.ParseLoss(text);
        if (share is null) Assert.Null(parsed);
        else Assert.Equal(share.Value, parsed!.Value, 1e-12);
    }
}
