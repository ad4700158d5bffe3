using MoEMesh.Node.Hosting;

namespace MoEMesh.Node.Tests;

public class ComputeBudgetTests
{
    private static NodeOptions Hosting(int experts, int? concurrent = null, int? blas = null)
    {
        var options = new NodeOptions { BlasThreads = blas };
        options.Batching.ConcurrentBatches = concurrent;
        if (experts > 0) options.Experts.Add(new ExpertHostingOptions { Pattern = "ffn.[0:8]", Count = experts });
        return options;
    }

    [Theory]
    [InlineData(4, 2, 2, 1)]   // more experts than cores: a batch per core, one thread each
    [InlineData(1, 2, 1, 2)]   // one expert: its batches get every core
    [InlineData(0, 2, 1, 2)]   // a gating node: its own GEMMs get every core
    [InlineData(3, 8, 3, 2)]   // fewer experts than cores: the cores are shared out, rounded down
    [InlineData(8, 1, 1, 1)]
    public void Unset_SharesTheCoresOut_WithoutOversubscribing(int experts, int cores, int concurrent, int blas)
    {
        var budget = ComputeBudget.Of(Hosting(experts), cores);
        Assert.Equal((concurrent, blas), (budget.ConcurrentBatches, budget.BlasThreads));
        Assert.False(budget.Oversubscribes(cores));
    }

    [Fact]
    public void AnExactUid_CountsAsOneExpert()
    {
        var options = new NodeOptions();
        options.Experts.Add(new ExpertHostingOptions { Uid = "ffn.0", Count = 5 });
        options.Experts.Add(new ExpertHostingOptions { Uid = "ffn.1" });
        Assert.Equal(2, ComputeBudget.Of(options, 4).ConcurrentBatches);
    }

    [Fact]
    public void SetByHand_IsKept_AndOversubscribingIsSaid()
    {
        var concurrentOnly = ComputeBudget.Of(Hosting(4, concurrent: 1), 2);
        Assert.Equal((1, 2), (concurrentOnly.ConcurrentBatches, concurrentOnly.BlasThreads));

        var threadsOnly = ComputeBudget.Of(Hosting(4, blas: 2), 4);
        Assert.Equal((2, 2), (threadsOnly.ConcurrentBatches, threadsOnly.BlasThreads));
        Assert.False(threadsOnly.Oversubscribes(4));

        var both = ComputeBudget.Of(Hosting(4, concurrent: 2, blas: 2), 2);
        Assert.Equal((2, 2), (both.ConcurrentBatches, both.BlasThreads));
        Assert.True(both.Oversubscribes(2));
    }
}
