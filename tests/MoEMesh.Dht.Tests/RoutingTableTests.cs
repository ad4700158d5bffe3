using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Routing;

namespace MoEMesh.Dht.Tests;

public class RoutingTableTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Nearest_MatchesBruteForce_OverEveryContactKept()
    {
        var random = new Random(3);
        var table = new RoutingTable(NodeId.Random(random), bucketSize: 20, Now);
        for (int i = 0; i < 3000; i++) table.Add(TestContacts.Random(random));
        var kept = table.Contacts.ToList();
        Assert.True(kept.Count > 100, $"only {kept.Count} contacts kept");
        for (int q = 0; q < 100; q++)
        {
            var target = NodeId.Random(random);
            var expected = kept.OrderBy(c => c.Id.DistanceTo(target)).Take(20).Select(c => c.Id).ToList();
            Assert.Equal(expected, table.Nearest(target, 20).Select(c => c.Id).ToList());
        }
    }

    [Fact]
    public void Add_FillsOwnBucket_ThenSplitsIt_AndEveryContactSitsInTheRightBucket()
    {
        var random = new Random(4);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, bucketSize: 4, Now);
        for (int i = 0; i < 4; i++) Assert.True(table.Add(TestContacts.Random(random)).Added);
        Assert.Equal(1, table.BucketCount);
        var near = TestContacts.WithPrefix(self, 6, random);
        // Four random contacts fill the one bucket; one near us splits our bucket until it fits.
        Assert.True(table.Add(near).Added);
        Assert.True(table.BucketCount > 1);
        Assert.Equal(near, table.Find(near.Id));
        Assert.Equal(5, table.Count);
    }

    [Fact]
    public void FullForeignBucket_KeepsNewcomerAsReplacement_AndAsksToPingTheHead()
    {
        var random = new Random(5);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, bucketSize: 3, Now);
        // Contacts differing from us at bit 0 all fall into one bucket that is not ours once ours has split.
        var far = Enumerable.Range(0, 3).Select(_ => TestContacts.WithPrefix(self, 0, random)).ToList();
        foreach (var c in far) table.Add(c);
        table.Add(TestContacts.WithPrefix(self, 5, random));
        var newcomer = TestContacts.WithPrefix(self, 0, random);

        var (added, ping) = table.Add(newcomer);

        Assert.False(added);
        Assert.Equal(far[0], ping);
        Assert.Null(table.Find(newcomer.Id));
        // A second newcomer while the ping is pending does not ask again.
        Assert.Null(table.Add(TestContacts.WithPrefix(self, 0, random)).PingBeforeEvict);
    }

    [Fact]
    public void PingedHeadThatFails_IsReplacedByTheNewestReplacement()
    {
        var random = new Random(6);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, bucketSize: 2, Now);
        var far = Enumerable.Range(0, 2).Select(_ => TestContacts.WithPrefix(self, 0, random)).ToList();
        foreach (var c in far) table.Add(c);
        table.Add(TestContacts.WithPrefix(self, 3, random));
        var older = TestContacts.WithPrefix(self, 0, random);
        var newer = TestContacts.WithPrefix(self, 0, random);
        var head = table.Add(older).PingBeforeEvict!;
        table.Add(newer);

        table.Remove(head.Id);

        Assert.Null(table.Find(head.Id));
        Assert.Equal(newer, table.Find(newer.Id));
        Assert.Null(table.Find(older.Id));
    }

    [Fact]
    public void PingedHeadThatAnswers_StaysAndMovesToTheTail()
    {
        var random = new Random(7);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, bucketSize: 2, Now);
        var far = Enumerable.Range(0, 2).Select(_ => TestContacts.WithPrefix(self, 0, random)).ToList();
        foreach (var c in far) table.Add(c);
        table.Add(TestContacts.WithPrefix(self, 3, random));
        var head = table.Add(TestContacts.WithPrefix(self, 0, random)).PingBeforeEvict!;

        table.PingAnswered(head);

        Assert.Equal(head, table.Find(head.Id));
        // Now the other contact is least recently seen: the next newcomer asks to ping it.
        Assert.Equal(far[1], table.Add(TestContacts.WithPrefix(self, 0, random)).PingBeforeEvict);
    }

    [Fact]
    public void StaleBucketTargets_FallInTheBucketsThatHaveNotBeenLookedUp()
    {
        var random = new Random(8);
        var self = NodeId.Random(random);
        var table = new RoutingTable(self, bucketSize: 2, Now);
        for (int i = 0; i < 200; i++) table.Add(TestContacts.Random(random));
        int buckets = table.BucketCount;
        var later = Now + TimeSpan.FromMinutes(11);
        var targets = table.StaleBucketTargets(later, TimeSpan.FromMinutes(10), random);
        Assert.Equal(buckets, targets.Count);
        Assert.Equal(Enumerable.Range(0, buckets - 1), targets.Take(buckets - 1).Select(t => self.CommonPrefixLength(t)));
        Assert.True(self.CommonPrefixLength(targets[^1]) >= buckets - 1);

        foreach (var t in targets.Skip(1)) table.MarkLookup(t, later);
        Assert.Single(table.StaleBucketTargets(later, TimeSpan.FromMinutes(10), random));
    }
}
