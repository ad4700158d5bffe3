using MoEMesh.Node.Queries;
using MoEMesh.Node.Serving;
using MoEMesh.Testing;

namespace MoEMesh.Node.Tests;

/// <summary>What the status page shows beside the DHT's records: rows an expert served over the last minute, and the recent queries kept.</summary>
public sealed class StatusDataTests
{
    [Fact]
    public void RowsLastMinute_CountsServedRows_AndForgetsThemAMinuteLater()
    {
        var time = new ManualTimeProvider();
        var load = new ExpertLoadTracker(time);
        load.Started();
        load.Finished(TimeSpan.FromMilliseconds(2), 64);
        time.Advance(TimeSpan.FromSeconds(30));
        load.Started();
        load.Finished(TimeSpan.FromMilliseconds(2), 16);
        load.Started();
        load.Finished(TimeSpan.FromMilliseconds(2), 0); // a failed request serves no row

        Assert.Equal(80, load.Snapshot().RowsLastMinute);
        Assert.Equal(0, load.Snapshot().QueueDepth);
        time.Advance(TimeSpan.FromSeconds(35));
        Assert.Equal(16, load.RowsLastMinute);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, load.RowsLastMinute);
        // Slots are reused as time goes round: an old slot's rows never count again.
        time.Advance(TimeSpan.FromSeconds(300));
        load.Started();
        load.Finished(TimeSpan.FromMilliseconds(2), 5);
        Assert.Equal(5, load.RowsLastMinute);
    }

    [Fact]
    public void RecentQueries_KeepTheNewestFirst_UpToCapacity_WithTextsCut()
    {
        var recent = new RecentQueries(2);
        var at = new DateTimeOffset(2026, 12, 2, 0, 0, 0, TimeSpan.Zero);
        var hop = new QueryHop(0, "ffn.0.1", "peer", 0.5, 1.5, "ok");
        var answer = new QueryAnswer("genre", 9, [new QueryResult("news", [], [hop])], 3);
        string longText = new string('a', RecentQueries.TextChars - 1) + "😀 and more";

        recent.Add(at, "genre", ["first"], 200, 3, answer, null);
        recent.Add(at.AddSeconds(1), "genre", [longText], 200, 3, answer, null);
        recent.Add(at.AddSeconds(2), "other", ["third"], 503, 10, null, "no expert could answer");

        var kept = recent.Newest();
        Assert.Equal(["other", "genre"], kept.Select(q => q.Model));
        Assert.Equal((503, "no expert could answer", (long?)null), (kept[0].Status, kept[0].Error, kept[0].Version));
        Assert.Null(kept[0].Texts[0].Label);
        Assert.Empty(kept[0].Texts[0].Route);
        // Cut before the emoji rather than through it.
        Assert.Equal(new string('a', RecentQueries.TextChars - 1) + "…", kept[1].Texts[0].Text);
        Assert.Equal(("news", hop), (kept[1].Texts[0].Label, Assert.Single(kept[1].Texts[0].Route)));
    }

    [Fact]
    public void RecentQueries_OfCapacityZero_KeepNone()
    {
        var recent = new RecentQueries(0);
        recent.Add(DateTimeOffset.UnixEpoch, "genre", ["a text"], 200, 1, null, "x");
        Assert.Empty(recent.Newest());
    }
}
