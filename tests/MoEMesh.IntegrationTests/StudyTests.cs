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
        Assert.Contains("stopped 3 nodes", run.Out);
        var report = File.ReadAllText(Path.Combine(_dir, "results.md"));
        foreach (var heading in (string[])["## 1. MoE against dense models", "## 2. Router losses", "## 4. Dynamic top-p", "## Macro-F1 per domain"])
            Assert.Contains(heading, report);
        // A row per configuration of each experiment, each with a figure in every measured column.
        var rows = report.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| model", StringComparison.Ordinal)
            && !l.StartsWith("| router", StringComparison.Ordinal) && !l.StartsWith("| routing", StringComparison.Ordinal)).ToArray();
        Assert.Equal(3 + 5 + 2 + 8, rows.Length);
        Assert.All(rows.Take(10), r => Assert.DoesNotContain("| - |", r));
        Assert.Contains("MoECollab's direction", report);
        Assert.Equal(8, Directory.GetDirectories(Path.Combine(_dir, "run", "models")).Length);
    }
}
