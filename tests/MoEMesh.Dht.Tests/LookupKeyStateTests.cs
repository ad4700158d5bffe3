using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Lookup;
using MoEMesh.Dht.Rpc;

namespace MoEMesh.Dht.Tests;

public class LookupKeyStateTests
{
    private static readonly Random Random = new(5);

    [Fact]
    public void NamerWhoseContactsFail_IsDiscredited_AndOnlyTheContactsNoOneElseNamed_LeaveTheWindow()
    {
        var query = FindQuery.ForKey("k");
        var liar = TestContacts.Random(Random).Id;
        var honest = TestContacts.Random(Random).Id;
        var state = new LookupKeyState(query, k: 20, seeds: []);
        var fakes = Enumerable.Range(0, 8).Select(_ => TestContacts.Random(Random)).ToArray();
        foreach (var fake in fakes) state.Offer(fake, hop: 2, failed: false, namedBy: liar);
        // One of the liar's contacts is real: an honest node names it too.
        state.Offer(fakes[7], hop: 2, failed: false, namedBy: honest);

        for (int i = 0; i < LookupKeyState.DiscreditAfter; i++)
        {
            Assert.False(state.IsDiscredited(liar));
            var asked = state[fakes[i].Id];
            state.MarkAsked(asked);
            if (i % 2 == 0) state.MarkFailed(asked);
            else state.MarkSlow(asked);
        }

        Assert.True(state.IsDiscredited(liar));
        Assert.All(fakes[LookupKeyState.DiscreditAfter..7], f => Assert.True(state[f.Id].IsOut, $"{f} is still in the window"));
        Assert.False(state[fakes[7].Id].IsOut);
        // What the liar names from now on is distrusted too, unless an honest node names it as well.
        var later = TestContacts.Random(Random);
        state.Offer(later, hop: 3, failed: false, namedBy: liar);
        Assert.True(state[later.Id].IsOut);
        state.Offer(later, hop: 3, failed: false, namedBy: honest);
        Assert.False(state[later.Id].IsOut);
    }

    [Fact]
    public void LateAnswers_GiveTheCreditBack_AndTheDistrustedContactsReturn()
    {
        var namer = TestContacts.Random(Random).Id;
        var state = new LookupKeyState(FindQuery.ForKey("k"), k: 20, seeds: []);
        var named = Enumerable.Range(0, LookupKeyState.DiscreditAfter + 3).Select(_ => TestContacts.Random(Random)).ToArray();
        foreach (var contact in named) state.Offer(contact, hop: 2, failed: false, namedBy: namer);
        var slow = named[..LookupKeyState.DiscreditAfter].Select(c => state[c.Id]).ToArray();
        foreach (var c in slow)
        {
            state.MarkAsked(c);
            state.MarkSlow(c);
        }
        // A loaded but honest node: its contacts are slow, so it is distrusted for now, and the key waits.
        Assert.True(state.IsDiscredited(namer));
        Assert.True(state[named[^1].Id].IsOut);
        Assert.True(state.AwaitsVerdict());

        state.MarkAnswered(slow[0]);
        state.MarkAnswered(slow[1]);
        Assert.False(state.IsDiscredited(namer));
        Assert.False(state[named[^1].Id].IsOut);
        Assert.False(state.AwaitsVerdict());
    }

    [Fact]
    public void SlowContactsThatFailForGood_EndTheWait_AndTheNamerStaysDiscredited()
    {
        var namer = TestContacts.Random(Random).Id;
        var state = new LookupKeyState(FindQuery.ForKey("k"), k: 20, seeds: []);
        var named = Enumerable.Range(0, LookupKeyState.DiscreditAfter + 2).Select(_ => TestContacts.Random(Random)).ToArray();
        foreach (var contact in named) state.Offer(contact, hop: 2, failed: false, namedBy: namer);
        var asked = named[..LookupKeyState.DiscreditAfter].Select(c => state[c.Id]).ToArray();
        foreach (var c in asked)
        {
            state.MarkAsked(c);
            state.MarkSlow(c);
        }
        foreach (var c in asked) state.MarkFailed(c);
        Assert.True(state.IsDiscredited(namer));
        Assert.False(state.AwaitsVerdict());
        Assert.Null(state.NextFresh());
    }

    [Fact]
    public void NamerWhoseContactsMostlyAnswer_KeepsItsCredit()
    {
        var query = FindQuery.ForKey("k");
        var namer = TestContacts.Random(Random).Id;
        var state = new LookupKeyState(query, k: 20, seeds: []);
        var named = Enumerable.Range(0, 10).Select(_ => TestContacts.Random(Random)).ToArray();
        foreach (var contact in named) state.Offer(contact, hop: 2, failed: false, namedBy: namer);
        // Four dead, five alive: churn, not lies.
        for (int i = 0; i < 9; i++)
        {
            var asked = state[named[i].Id];
            state.MarkAsked(asked);
            if (i % 2 == 0 && i < 8) state.MarkFailed(asked);
            else state.MarkAnswered(asked);
        }
        Assert.False(state.IsDiscredited(namer));
        Assert.False(state[named[9].Id].IsOut);
    }

    [Fact]
    public void SlowContactThatAnswersAfterAll_CountsAsAnswered()
    {
        var namer = TestContacts.Random(Random).Id;
        var state = new LookupKeyState(FindQuery.ForKey("k"), k: 20, seeds: []);
        var named = Enumerable.Range(0, 4).Select(_ => TestContacts.Random(Random)).ToArray();
        foreach (var contact in named) state.Offer(contact, hop: 2, failed: false, namedBy: namer);
        for (int i = 0; i < 3; i++)
        {
            var asked = state[named[i].Id];
            state.MarkAsked(asked);
            state.MarkSlow(asked);
            if (i < 2) state.MarkAnswered(asked); // two were only slow
        }
        Assert.False(state.IsDiscredited(namer));
    }

    [Fact]
    public void NodeNamingAContactAlreadySlow_IsChargedForIt_AndAnAnswerLaterSettlesEveryNamerOnce()
    {
        var first = TestContacts.Random(Random).Id;
        var late = TestContacts.Random(Random).Id;
        var state = new LookupKeyState(FindQuery.ForKey("k"), k: 20, seeds: []);
        var contact = TestContacts.Random(Random);
        state.Offer(contact, hop: 2, failed: false, namedBy: first);
        var candidate = state[contact.Id];
        state.MarkAsked(candidate);
        state.MarkSlow(candidate);
        state.Offer(contact, hop: 3, failed: false, namedBy: late);

        // The late namer was charged the slow contact, so the answer takes it back from it too: both end
        // credited with one answer, and asking again does not count it twice.
        state.MarkAnswered(candidate);
        state.AskAgain(candidate);
        state.MarkAsked(candidate);
        state.MarkAnswered(candidate);
        for (int i = 0; i < 2 * LookupKeyState.DiscreditAfter; i++)
        {
            var dead = TestContacts.Random(Random);
            state.Offer(dead, hop: 3, failed: false, namedBy: late);
            state.MarkAsked(state[dead.Id]);
            state.MarkFailed(state[dead.Id]);
            // With one answer counted, the late namer is discredited only once failures pass twice the answers.
            Assert.Equal(i + 1 > 2 && i + 1 >= LookupKeyState.DiscreditAfter, state.IsDiscredited(late));
        }
        Assert.False(state.AwaitsVerdict());
    }
}
