namespace MoEMesh.IntegrationTests;

/// <summary><c>moemesh localnet study --tiny</c> (what <c>scripts/study --tiny</c> runs): the study end to end on a 3-node testnet.</summary>
public sealed class StudyTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("moemesh-study-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task TheTinyStudy_TrainsEveryConfiguration_WritesTheReport_AndStopsItsTestnet()
    {
        // What another study (scripts/churn-study) wrote into the page is kept; the rest is written anew.
        File.WriteAllText(Path.Combine(_dir, "results.md"), "an older report\n<!-- churn-study -->\n## 6. Churn, kept\n<!-- /churn-study -->\n");
        var run = await CliRun.RunAsync(_dir, TimeSpan.FromMinutes(10), "localnet", "study", "--tiny", "--timeout", "300",
            "--data-dir", Path.Combine(Testing.RepositoryRoot.Path, "data"), "--out", "results.md", "--run-dir", "run");
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("wrote ", run.Out);
        var report = File.ReadAllText(Path.Combine(_dir, "results.md"));
        Assert.DoesNotContain("an older report", report);
        Assert.Contains("<!-- churn-study -->\n## 6. Churn, kept\n<!-- /churn-study -->", report.ReplaceLineEndings("\n"));
        foreach (var heading in (string[])["## 1. MoE against dense models", "## 2. Router losses", "## 3. Contributors' domain experts", "## 4. Dynamic top-p", "## 5. Nodes down", "## Macro-F1 per domain"])
            Assert.Contains(heading, report);
        // A row per configuration of each experiment, each with a figure in every measured column.
        var rows = report.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| model", StringComparison.Ordinal)
            && !l.StartsWith("| router", StringComparison.Ordinal) && !l.StartsWith("| routing", StringComparison.Ordinal) && !l.StartsWith("| experts |", StringComparison.Ordinal)).ToArray();
        // Experiments 1 to 4 (3, 5, 4 and 2 rows), experiment 5 (4 models at 0, 1 and 2 nodes down), and the 14 models' F1 per domain.
        Assert.Equal(3 + 5 + 4 + 2 + 12 + 14, rows.Length);
        Assert.All(rows.Take(14), r => Assert.DoesNotContain("| - |", r));
        Assert.Contains("MoECollab's direction", report);
        Assert.Equal(14, Directory.GetDirectories(Path.Combine(_dir, "run", "models")).Length);
        // The contributors trained each expert on their own domain, and the nodes served those checkpoints: the frozen model's experts announce them.
        // The contributors trained the grid's first row on WordNet (the domain with most texts) and the second on Brown, and the nodes served their
        // checkpoints: those the last testnet (fine-tuning them) wrote at its stop still name the domain.
        Assert.Matches(@"training ffn\.0\.1 \(ffn, d = 16\) on \d+ texts of domain wordnet", run.Out);
        Assert.Matches(@"training ffn\.1\.0 \(ffn, d = 16\) on \d+ texts of domain brown", run.Out);
        var served = Directory.GetFiles(Path.Combine(_dir, "run"), "checkpoint.json", SearchOption.AllDirectories).Where(f => f.Contains("node-", StringComparison.Ordinal)).ToArray();
        Assert.NotEmpty(served);
        foreach (var manifest in served)
        {
            using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(manifest));
            string uid = Path.GetFileName(Path.GetDirectoryName(manifest))!;
            Assert.Equal(uid.StartsWith("ffn.0.", StringComparison.Ordinal) ? "wordnet" : "brown", json.RootElement.GetProperty("origin").GetProperty("domain").GetString());
        }
        Assert.Contains("MoECollab's direction (domain experts raise their domains' scores)", report);
        // Experiment 5 killed 1 and then 2 of the 3 nodes: only the first was left for `down` to stop.
        Assert.Contains("| MoE, top-2, with a shared expert, one host per expert | 1 | 2 of 3 |", report);
        Assert.Contains("stopped 1 node", run.Out);
    }
}
