using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Models;

namespace MoEMesh.Routing.Tests;

/// <summary>Text features, signed publications, and the macro-F1 and specialisation of the evaluator.</summary>
public sealed class ModelPartsTests
{
    [Fact]
    public void TextFeatures_AreLowerCasedWordsAndNeighbouringPairs()
    {
        Assert.Equal(["don't", "stop", "me", "now", "don't stop", "stop me", "me now"], TextFeatures.Of("Don't STOP -- me, now!"));
        Assert.Equal(["café", "24"], TextFeatures.Of("  Café: 24  ").Take(2));
        Assert.Empty(TextFeatures.Of(" ... ' "));
    }

    [Fact]
    public void Publication_VerifiesOnlyAsSigned()
    {
        using var publisher = PeerIdentity.FromSeed(1);
        var publication = ModelPublications.Sign("genre", 7, "ab12", 1000, publisher);
        Assert.True(ModelPublications.Verify(publication));
        Assert.Equal(publisher.PeerId, ModelPublications.PublisherOf(publication));
        foreach (var tampered in new[]
        {
            publication.Clone().Also(p => p.Name = "genre2"),
            publication.Clone().Also(p => p.Version = 8),
            publication.Clone().Also(p => p.Sha256 = "ab13"),
            publication.Clone().Also(p => p.Size = 1001),
            publication.Clone().Also(p => p.PublisherKey = Google.Protobuf.ByteString.CopyFrom(PeerIdentity.FromSeed(2).PublicKey)),
        })
            Assert.False(ModelPublications.Verify(tampered));
        Assert.False(ModelPublications.Verify(new Protocol.Wire.Experts.ModelPublication { Name = "genre", Version = 7, Sha256 = "ab12", Size = 1000 }));
    }

    [Fact]
    public void Trusted_TakesThePublisherMostHoldersAttest_NotTheHighestVersion()
    {
        using var owner = PeerIdentity.FromSeed(1);
        using var intruder = PeerIdentity.FromSeed(2);
        ModelHostInfo Holder(int seed, ModelPublication p) => new("genre", PeerIdentity.FromSeed(seed).PeerId, [new PeerAddress("h", 1)], p, DateTimeOffset.MaxValue);
        var v1 = ModelPublications.Sign("genre", 1, "aa", 10, owner);
        var v2 = ModelPublications.Sign("genre", 2, "bb", 10, owner);
        var hijack = ModelPublications.Sign("genre", 99, "cc", 10, intruder);
        var forged = v2.Clone().Also(p => p.Version = 100);
        var trusted = ModelPublications.Trusted([Holder(10, v1), Holder(11, v2), Holder(12, hijack), Holder(13, forged)]);
        Assert.Equal([2L, 1L], trusted.Select(h => h.Version));
        // Between as many holders each, the newer version wins.
        Assert.Equal([99L], ModelPublications.Trusted([Holder(10, v1), Holder(12, hijack)]).Select(h => h.Version));
    }

    [Fact]
    public void MacroF1_AveragesOverLabelsInGoldOrPredicted()
    {
        // a: tp 1, fp 1 → 2/3; b: fn 1 → 0; c: tp 1, fn 1 (the missing prediction is wrong) → 2/3.
        double f1 = ModelEvaluator.MacroF1(["a", "b", "c", "c"], ["a", "a", "c", null]);
        Assert.Equal((2.0 / 3 + 0 + 2.0 / 3) / 3, f1, 1e-12);
    }

    [Fact]
    public void Specialisation_IsOne_WhenTheExpertTellsTheDomain_AndZero_WhenItTellsNothing()
    {
        (string, string)[] telling = [("mail", "ffn.0"), ("mail", "ffn.0"), ("news", "ffn.1"), ("wiki", "ffn.2"), ("wiki", "ffn.3")];
        Assert.Equal(1.0, ModelEvaluator.Specialisation(telling)!.Value, 9);
        (string, string)[] blind = [("mail", "ffn.0"), ("news", "ffn.0"), ("mail", "ffn.1"), ("news", "ffn.1")];
        Assert.Equal(0.0, ModelEvaluator.Specialisation(blind)!.Value, 9);
        // Partly told: one expert only ever gets mail, the other mail and news evenly: H(D | X) = ½ · log 2.
        (string, string)[] partly = [("mail", "ffn.0"), ("mail", "ffn.0"), ("mail", "ffn.1"), ("news", "ffn.1")];
        double hD = -(0.75 * Math.Log(0.75) + 0.25 * Math.Log(0.25)), hDgivenX = 0.5 * Math.Log(2);
        Assert.Equal((hD - hDgivenX) / hD, ModelEvaluator.Specialisation(partly)!.Value, 9);
        Assert.Null(ModelEvaluator.Specialisation([("mail", "ffn.0"), ("mail", "ffn.1")]));
        Assert.Null(ModelEvaluator.Specialisation([]));
    }
}

internal static class ProtobufTestExtensions
{
    public static T Also<T>(this T value, Action<T> change)
    {
        change(value);
        return value;
    }
}
