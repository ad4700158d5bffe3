using System.Globalization;
using System.Text.Json;
using MoEMesh.Node.Cli;
using MoEMesh.Node.Data;
using MoEMesh.Node.Localnet;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Study;

/// <summary>
/// Experiment 3's contributors, as MoECollab has them: each domain has its own contributors, who own the
/// grid rows given to that domain (one row or more, by its share of the training texts) and train every
/// expert of those rows with <c>moemesh expert train</c> on a shard of their domain's texts alone (the
/// domain's texts dealt out in turn), against the base model's trunk kept as it is. Their checkpoints go to
/// the nodes that host those uids before the testnet starts, which serve them as they are.
/// </summary>
internal static class StudyContributors
{
    /// <summary>The domain whose contributors own each of the grid's <paramref name="rows"/> rows: one row per domain, the rest to the domains with the most texts per row.</summary>
    /// <exception cref="LocalnetException">There are more domains than rows.</exception>
    public static string[] DomainsOfRows(IReadOnlyDictionary<string, int> textsPerDomain, int rows)
    {
        if (textsPerDomain.Count == 0)
            throw new LocalnetException("experiment 3 gives each domain a row of the grid; the training data has no domain column (or no row names a domain).", 1);
        if (textsPerDomain.Count > rows)
            throw new LocalnetException($"experiment 3 gives each domain a row of the grid; the data has {textsPerDomain.Count} domains and the grid {rows} rows.", 1);
        var owned = textsPerDomain.Keys.Order(StringComparer.Ordinal).ToDictionary(d => d, _ => 1, StringComparer.Ordinal);
        for (int left = rows - owned.Count; left > 0; left--)
        {
            var most = owned.Keys.MaxBy(d => (double)textsPerDomain[d] / owned[d])!;
            owned[most]++;
        }
        return owned.OrderByDescending(o => textsPerDomain[o.Key]).ThenBy(o => o.Key, StringComparer.Ordinal).SelectMany(o => Enumerable.Repeat(o.Key, o.Value)).ToArray();
    }

    /// <summary>Training texts per domain of <paramref name="trainFile"/>.</summary>
    public static Dictionary<string, int> TextsPerDomain(StudyPlan plan, string trainFile) =>
        ByDomain(plan, trainFile).ToDictionary(d => d.Key, d => d.Value.Length, StringComparer.Ordinal);

    /// <summary>The rows of <paramref name="trainFile"/> that name a domain, by domain.</summary>
    private static Dictionary<string, Example[]> ByDomain(StudyPlan plan, string trainFile) =>
        DataFileReader.Read(trainFile, DataFormat.Tsv, plan.Columns, domainIfPresent: true).Examples.Where(e => e.Domain is not null)
            .GroupBy(e => e.Domain!).ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.Ordinal);

    /// <summary>Trains every expert of the grid as its row's contributors would, into <paramref name="checkpointDir"/>/UID.</summary>
    public static async Task TrainAsync(StudyPlan plan, string trainFile, string baseModel, ulong seed, string checkpointDir, TextWriter output, CancellationToken cancellationToken)
    {
        var byDomain = ByDomain(plan, trainFile);
        var owners = DomainsOfRows(byDomain.ToDictionary(d => d.Key, d => d.Value.Length), plan.GridSide);
        var shards = Path.Combine(checkpointDir, "data");
        Directory.CreateDirectory(shards);
        foreach (var domain in byDomain.Keys)
        {
            var uids = Enumerable.Range(0, plan.GridSide).Where(r => owners[r] == domain)
                .SelectMany(r => Enumerable.Range(0, plan.GridSide).Select(c => $"ffn.{r}.{c}")).ToArray();
            output.WriteLine($"== experiment 3: contributors of {domain} train {string.Join(", ", uids)} on {byDomain[domain].Length} texts, a shard each, seed {seed}");
            for (int i = 0; i < uids.Length; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var shard = Path.Combine(shards, uids[i] + ".jsonl");
                await File.WriteAllLinesAsync(shard, byDomain[domain].Where((_, n) => n % uids.Length == i)
                    .Select(e => JsonSerializer.Serialize(new Dictionary<string, string> { ["text"] = e.Text, ["label"] = e.Label, ["domain"] = domain })), cancellationToken);
                int exit = await MoEMeshCommand.RunAsync(["expert", "train", "--uid", uids[i], "--domain", domain, "--data", shard, "--trunk-from", baseModel, "--contributor", $"{domain}-contributors",
                    "--hidden-dim", plan.Width.ToString(CultureInfo.InvariantCulture), "--seed", seed.ToString(CultureInfo.InvariantCulture), .. plan.Length, "--checkpoint-dir", checkpointDir]);
                cancellationToken.ThrowIfCancellationRequested();
                if (exit != 0) throw new LocalnetException($"the contributors' training of {uids[i]} (seed {seed}) ended with exit {exit}; its output is above.", 1);
            }
        }
    }

    /// <summary>Copies each contributed checkpoint to every node of <paramref name="layout"/> that hosts its uid, before the nodes start.</summary>
    public static void Place(LocalnetLayout layout, string checkpointDir)
    {
        for (int node = 0; node < layout.Nodes; node++)
            foreach (var uid in layout.ExpertsOf(node))
            {
                var from = Path.Combine(checkpointDir, uid);
                if (!Directory.Exists(from)) throw new LocalnetException($"{from} does not exist: the contributors trained no {uid}.", 1);
                var to = Path.Combine(layout.RunDir, $"node-{node}", "checkpoints", uid);
                Directory.CreateDirectory(to);
                foreach (var file in Directory.EnumerateFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)), overwrite: true);
            }
    }
}
