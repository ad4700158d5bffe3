using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Gating;
using MoEMesh.Testing;

namespace MoEMesh.Routing.Tests;

public sealed class BeamSearchTests
{
    private static readonly PeerIdentity Host = PeerIdentity.FromSeed(900);

    private static async Task<(ExpertDirectory Directory, MemoryDht Dht)> DeclaredAsync(TimeProvider time, IEnumerable<ExpertUid> uids)
    {
        var dht = new MemoryDht(time);
        var directory = new ExpertDirectory(dht, time);
        await directory.DeclareAsync(Host, uids.Select(u => (u, new ExpertRecord { Addresses = { "127.0.0.1:1" } })).ToArray(), time.GetUtcNow() + TimeSpan.FromMinutes(1), default);
        return (directory, dht);
    }

    private static float[][] RandomScores(Random random, ExpertGrid grid) =>
        grid.Sizes.Select(size => Enumerable.Range(0, size).Select(_ => (float)(random.NextDouble() * 4 - 2)).ToArray()).ToArray();

    [Theory]
    [InlineData(1, 4)]
    [InlineData(4, 4)]
    [InlineData(8, 2)]
    public async Task AllExpertsAlive_ReturnsExactlyTheExhaustiveTopK_OnA32x32x32Grid(int k, int beamWidth)
    {
        var time = new ManualTimeProvider();
        var random = new Random(5);
        var grid = new ExpertGrid("ffn", 32, 32, 32);
        var live = new HashSet<string>();
        while (live.Count < 1000) live.Add($"ffn.{random.Next(32)}.{random.Next(32)}.{random.Next(32)}");
        var uids = live.Select(ExpertUid.Parse).ToArray();
        var (directory, _) = await DeclaredAsync(time, uids);
        var samples = Enumerable.Range(0, 16).Select(_ => (IReadOnlyList<float[]>)RandomScores(random, grid)).ToArray();

        var found = await new BeamSearch(directory).FindAsync(grid, samples, k, beamWidth, default);

        for (int s = 0; s < samples.Length; s++)
        {
            var exhaustive = uids.Select(u => (Uid: u, Score: grid.Score(u, samples[s]))).OrderByDescending(x => x.Score).Take(k).ToArray();
            Assert.Equal(exhaustive.Select(x => x.Uid), found[s].Select(x => x.Uid));
            Assert.Equal(exhaustive.Select(x => x.Score), found[s].Select(x => x.Score));
        }
    }

    [Fact]
    public async Task StrongFirstCoordinateWithWeakLiveChildren_DoesNotMisleadTheSearch()
    {
        var time = new ManualTimeProvider();
        var grid = new ExpertGrid("ffn", 2, 2);
        // Coordinate 0 of the first dimension scores highest, but its only live child scores very low.
        var (directory, _) = await DeclaredAsync(time, [ExpertUid.Parse("ffn.0.1"), ExpertUid.Parse("ffn.1.0")]);
        float[][] scores = [[10f, 9f], [0f, -100f]];
        var found = await new BeamSearch(directory).FindAsync(grid, [scores], k: 1, beamWidth: 1, default);
        Assert.Equal("ffn.1.0", Assert.Single(found[0]).Uid.Value);
    }

    [Fact]
    public async Task FewerLiveExpertsThanK_ReturnsAllOfThem()
    {
        var time = new ManualTimeProvider();
        var grid = new ExpertGrid("ffn", 4, 4);
        var (directory, _) = await DeclaredAsync(time, [ExpertUid.Parse("ffn.2.3"), ExpertUid.Parse("ffn.0.1")]);
        var found = await new BeamSearch(directory).FindAsync(grid, [RandomScores(new Random(1), grid)], k: 5, beamWidth: 2, default);
        Assert.Equal(["ffn.0.1", "ffn.2.3"], found[0].Select(x => x.Uid.Value).Order());
    }

    [Fact]
    public async Task ScoresOfTheWrongShape_AreRefusedNamingTheSample()
    {
        var time = new ManualTimeProvider();
        var (directory, _) = await DeclaredAsync(time, [ExpertUid.Parse("ffn.0.0")]);
        var grid = new ExpertGrid("ffn", 2, 2);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => new BeamSearch(directory).FindAsync(grid, [[[1f, 2f], [1f]]], 1, 1, default));
        Assert.Contains("Sample 0, dimension 1: 1 scores for 2 coordinates", e.Message);
    }
}
