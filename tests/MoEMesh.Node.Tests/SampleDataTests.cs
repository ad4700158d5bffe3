using MoEMesh.Node.Cli;
using MoEMesh.Node.Data;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Tests;

/// <summary>The committed sample (data/train.tsv, data/test.tsv) as the readers see it, and the seeded split over it.</summary>
public sealed class SampleDataTests
{
    private static IReadOnlyList<Example> Read(string file)
    {
        var read = DataFileReader.Read(Path.Combine(Testing.RepositoryRoot.Path, "data", file), DataFormat.Tsv, new DataColumns(DomainColumn: "domain"));
        Assert.Empty(read.Skipped);
        return read.Examples;
    }

    [Fact]
    public void TheSample_HasTheCountsItsReadmeStates_AndNoTextInBothFiles()
    {
        var train = Read("train.tsv");
        var test = Read("test.tsv");
        Assert.Equal(["brown", "wordnet"], train.Concat(test).Select(e => e.Domain).Distinct().Order());
        Assert.Equal((15_058, 3_766), (train.Count, test.Count));
        Assert.Equal((10_258, 4_800), (train.Count(e => e.Domain == "wordnet"), train.Count(e => e.Domain == "brown")));
        Assert.Equal((2_566, 1_200), (test.Count(e => e.Domain == "wordnet"), test.Count(e => e.Domain == "brown")));
        Assert.Equal(45, train.Where(e => e.Domain == "wordnet").Select(e => e.Label).Distinct().Count());
        Assert.Equal(15, train.Where(e => e.Domain == "brown").Select(e => e.Label).Distinct().Count());
        // Every label is in both files, and the domains' labels are disjoint.
        Assert.Equal(train.Select(e => e.Label).ToHashSet(), test.Select(e => e.Label).ToHashSet());
        Assert.Empty(train.Where(e => e.Domain == "wordnet").Select(e => e.Label).Intersect(train.Where(e => e.Domain == "brown").Select(e => e.Label)));
        Assert.Empty(train.Select(e => e.Text).Intersect(test.Select(e => e.Text)));
        Assert.Contains(train, e => e.Text.Contains('"')); // quoted fields read back whole
    }

    [Fact]
    public void TheEvalSplit_IsTheSameForTheSameSeed_AndDiffersForAnother()
    {
        var rows = Read("train.tsv");
        var (a, heldA) = EvalSplit.Of(rows, 0.1, seed: 3);
        var (b, heldB) = EvalSplit.Of(rows, 0.1, seed: 3);
        var (_, heldC) = EvalSplit.Of(rows, 0.1, seed: 4);
        Assert.Equal(heldA.Select(e => e.Text), heldB.Select(e => e.Text));
        Assert.Equal(a.Count, b.Count);
        Assert.NotEqual(heldA.Select(e => e.Text), heldC.Select(e => e.Text));
        Assert.Equal(rows.Count, a.Count + heldA.Count);
        Assert.Empty(a.Select(e => e.Text).Intersect(heldA.Select(e => e.Text)));
    }
}
