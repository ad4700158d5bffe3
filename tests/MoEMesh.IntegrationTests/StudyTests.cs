namespace MoEMesh.IntegrationTests;

/// <summary><c>moemesh localnet study --tiny</c> (what <c>scripts/study --tiny</c> runs): the study end to end on a 3-node testnet.</summary>
public sealed class StudyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moemesh-study-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task TheTinyStudy_TrainsEveryConfiguration_WritesTheReport_AndStopsItsTestnet()
    {
        var run = await CliRun.RunAsync(_dir, TimeSpan.FromMinutes(10), "localnet", "study", "--tiny", "--timeout", "300",
            "--data-dir", Path.Combine(Testing.RepositoryRoot.Path, "data"), "--out", "results.md", "--run-dir", "run");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("wrote ", run.Out);
        var report = File.ReadAllText(Path.Combine(_dir, "results.md"));
        foreach (var heading in (string[])["## 1. MoE against dense models", "## 2. Router losses", "## 4. Dynamic top-p", "## 5. Nodes down", "## Macro-F1 per domain"])
            Assert.Contains(heading, report);
        // A row per configuration of each experiment, each with a figure in every measured column.
        var rows = report.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| model", StringComparison.Ordinal)
            && !l.StartsWith("| router", StringComparison.Ordinal) && !l.StartsWith("| routing", StringComparison.Ordinal)).ToArray();
        Assert.Equal(3 + 5 + 2 + 6 + 9, rows.Length);
        Assert.All(rows.Take(10), r => Assert.DoesNotContain("| - |", r));
        Assert.Contains("MoECollab's direction", report);
        Assert.Equal(9, Directory.GetDirectories(Path.Combine(_dir, "run", "models")).Length);
        // Experiment 5 killed 1 and then 2 of the 3 nodes: only the first was left for `down` to stop.
        Assert.Contains("| MoE, top-2, with a shared expert | 2 of 3 |", report);
        Assert.Contains("stopped 1 node", run.Out);
    }
}
