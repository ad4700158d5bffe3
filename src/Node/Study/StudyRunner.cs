using System.Globalization;
using System.Text.Json;
using MoEMesh.Node.Cli;
using MoEMesh.Node.Data;
using MoEMesh.Node.Localnet;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Study;

/// <summary>
/// Runs the study: trains and measures every configuration for every seed, each against a testnet started
/// for it (each a <c>moemesh train</c> run in this process, its eval.json kept under the run directory),
/// writes the report, and stops the testnets whatever happened.
/// </summary>
internal static class StudyRunner
{
    /// <summary>When the last full run finished and how long it took, beside its models (for --report-only).</summary>
    private const string RanFile = "study-ran.json";

    /// <summary>Writes the report again from the evaluations an earlier study left in <paramref name="runDir"/>, training nothing.</summary>
    public static int Report(StudyPlan plan, string runDir, string reportPath, TimeProvider time, TextWriter output)
    {
        var results = new List<StudyResult>();
        for (ulong seed = 1; seed <= (ulong)plan.Seeds; seed++)
        {
            foreach (var config in plan.Configs) results.Add(Read(config, seed, runDir));
            foreach (var share in plan.DownShares)
                foreach (var model in plan.DownModels) results.Add(ReadDown(model, share, seed, runDir));
        }
        Write(plan, runDir, results, reportPath, time, null, output);
        return 0;
    }

    public static async Task<int> RunAsync(StudyPlan plan, string runDir, string reportPath, LocalnetProbe probe, TimeSpan limit, TextWriter output, CancellationToken cancellationToken)
    {
        string train = Path.Combine(plan.DataDir, "train.tsv"), test = Path.Combine(plan.DataDir, "test.tsv");
        foreach (var file in (string[])[train, test])
            if (!File.Exists(file))
                throw new LocalnetException($"{file} does not exist; `scripts/data/fetch` writes data/full/, or give --data-dir (the committed sample is data/).");
        // Experiment 3 gives each domain grid rows: data it cannot split so fails now, not after an hour of training.
        StudyContributors.DomainsOfRows(StudyContributors.TextsPerDomain(plan, train), plan.GridSide);
        StartAfresh(runDir);
        long started = probe.Time.GetTimestamp();
        try
        {
            var results = new List<StudyResult>();
            for (ulong seed = 1; seed <= (ulong)plan.Seeds; seed++)
            {
                foreach (var config in plan.Configs)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    string contributed = Path.Combine(runDir, "contributed", $"s{seed}");
                    if (config.Contributed && !Directory.Exists(contributed))
                        await StudyContributors.TrainAsync(plan, train, BaseFile(runDir, seed), seed, contributed, output, cancellationToken);

                    // Every model meets the experts as they were made (fresh, or as the contributors left them), on a testnet of its own.
                    var layout = new LocalnetLayout(plan.Nodes, plan.ExpertsPerNode(config.Hosts), plan.GridSide, plan.GridSide, plan.Width, Seed: 1, UseTls: true, runDir);
                    ClearNodes(runDir);
                    if (config.Contributed) StudyContributors.Place(layout, contributed);
                    output.WriteLine();
                    output.WriteLine($"== experiment {config.Experiment}: {config.Description}, seed {seed}");
                    var state = await LocalnetUp.RunAsync(layout, probe, limit, output, cancellationToken);
                    try
                    {
                        string peer = $"{state.Nodes[0].PeerId}@{state.Nodes[0].PeerAddress}";
                        var flags = config.Flags.Select(f => f == StudyPlan.BaseModel ? BaseFile(runDir, seed) : f);
                        int exit = await MoEMeshCommand.RunAsync([.. CommonCommand(plan, peer, runDir), "--model", config.Name, "--seed", seed.ToString(CultureInfo.InvariantCulture),
                            "--out", ModelDir(runDir, config.Name, seed), .. flags]);
                        // A signal stops the training in this process first (it saves what it trained): the study ends with it.
                        cancellationToken.ThrowIfCancellationRequested();
                        if (exit != 0) throw new LocalnetException($"training {config.Name} (seed {seed}) ended with exit {exit}; its output is above.", 1);
                        results.Add(Read(config, seed, runDir));
                        if (plan.DownModels.Contains(config.Name))
                            await MeasureDownAsync(plan, state, config.Name, seed, runDir, test, probe, limit, results, output, cancellationToken);
                    }
                    finally
                    {
                        await LocalnetDown.RunAsync(runDir, probe.Time, output, CancellationToken.None);
                    }
                }
            }
            Write(plan, runDir, results, reportPath, probe.Time, probe.Time.GetElapsedTime(started), output);
            return 0;
        }
        finally
        {
            await LocalnetDown.RunAsync(runDir, probe.Time, output, CancellationToken.None);
        }
    }

    /// <summary>
    /// Experiment 5: kills nodes of the model's testnet (never the first, through which the client joins) up to
    /// each share in turn, measuring the model right after each kill.
    /// </summary>
    private static async Task MeasureDownAsync(StudyPlan plan, LocalnetState state, string model, ulong seed, string runDir, string test, LocalnetProbe probe, TimeSpan limit,
        List<StudyResult> results, TextWriter output, CancellationToken cancellationToken)
    {
        string peer = $"{state.Nodes[0].PeerId}@{state.Nodes[0].PeerAddress}";
        int killed = 0;
        foreach (var share in plan.DownShares)
        {
            int target = (int)Math.Ceiling(share * plan.Nodes);
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"== experiment 5: {model}, seed {seed}, {share:P0} of the nodes down"));
            state = await LocalnetChaos.RunAsync(state, runDir, target - killed, "KILL", restartAfter: null, seed: 1, probe, limit, output, cancellationToken);
            killed = target;
            await EvaluateAsync(peer, Path.Combine(ModelDir(runDir, model, seed), model + ModelFile.Extension), test, DownReport(runDir, model, share, seed), output, cancellationToken);
            results.Add(ReadDown(model, share, seed, runDir));
        }
    }

    /// <summary>
    /// Every study starts from fresh experts: what an earlier study left in <paramref name="runDir"/> (its
    /// nodes' files, the contributors' experts, models) goes, unless its testnet still runs.
    /// </summary>
    private static void StartAfresh(string runDir)
    {
        if (LocalnetState.Load(runDir) is { } earlier && earlier.Nodes.Any(LocalnetProcesses.IsRunning))
            throw new LocalnetException($"a testnet still runs in {runDir}; `scripts/localnet/down --run-dir {runDir}` stops it first.");
        ClearNodes(runDir);
        foreach (var dir in (string[])["models", "down", "contributed"])
            if (Directory.Exists(Path.Combine(runDir, dir))) Directory.Delete(Path.Combine(runDir, dir), recursive: true);
        if (File.Exists(Path.Combine(runDir, RanFile))) File.Delete(Path.Combine(runDir, RanFile));
    }

    /// <summary>Removes the nodes' files (keys, configuration, checkpoints, logs) and the testnet's state, so the next testnet starts from fresh experts.</summary>
    private static void ClearNodes(string runDir)
    {
        if (!Directory.Exists(runDir)) return;
        foreach (var dir in Directory.EnumerateDirectories(runDir, "node-*")) Directory.Delete(dir, recursive: true);
        foreach (var file in Directory.EnumerateFiles(runDir, "node-*").Append(Path.Combine(runDir, LocalnetState.FileName)).Where(File.Exists))
            File.Delete(file);
    }

    /// <summary>The base model of experiment 3 for <paramref name="seed"/>: that seed's equal-MACs dense model.</summary>
    private static string BaseFile(string runDir, ulong seed) => Path.Combine(ModelDir(runDir, StudyPlan.BaseConfig, seed), StudyPlan.BaseConfig + ModelFile.Extension);

    /// <summary>Measures the model in <paramref name="modelFile"/> on <paramref name="data"/> through the swarm as a gating client, as <c>moemesh eval</c> does, writing its report to <paramref name="reportFile"/>.</summary>
    private static async Task EvaluateAsync(string peer, string modelFile, string data, string reportFile, TextWriter output, CancellationToken cancellationToken)
    {
        var (swarm, exit) = await SwarmClient.JoinAsync(peer, useTls: true, timeoutSeconds: 30, routing: new Routing.RoutingOptions(), identity: null, cancellationToken);
        if (swarm is null) throw new LocalnetException($"the testnet's first node does not answer (exit {exit}).", exit);
        await using (swarm)
        {
            var model = ModelFile.Load(modelFile);
            var examples = DataFileReader.Read(data, DataFormat.Tsv, model.Spec.Data, domainIfPresent: true).Examples;
            var report = await new ModelEvaluator(new MoEModel(model.Spec, model.Weights, swarm.MixtureFactory.Create)).EvaluateAsync(examples, 64, () => swarm.Transport.Bytes, cancellationToken);
            Directory.CreateDirectory(Path.GetDirectoryName(reportFile)!);
            File.WriteAllText(reportFile, EvaluationView.ToJson(report));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Path.GetFileName(reportFile)}: accuracy {report.Accuracy:P2}, {report.Failed} of {report.Samples} texts without an answer"));
        }
    }

    private static string DownReport(string runDir, string model, double share, ulong seed) =>
        Path.Combine(runDir, "down", string.Create(CultureInfo.InvariantCulture, $"{model}-s{seed}-{share * 100:F0}.json"));

    private static StudyResult ReadDown(string model, double share, ulong seed, string runDir)
    {
        try
        {
            return StudyResult.Read(DownName(model, share), seed, DownReport(runDir, model, share, seed));
        }
        catch (InvalidDataException e)
        {
            throw new LocalnetException($"{model} with {share:P0} of the nodes down (seed {seed}) has no evaluation to report: {e.Message}", 1);
        }
    }

    /// <summary>How experiment 5's results are named: "moe@30".</summary>
    public static string DownName(string model, double share) => string.Create(CultureInfo.InvariantCulture, $"{model}@{share * 100:F0}");

    /// <summary>The <c>moemesh train</c> arguments every model shares.</summary>
    private static string[] CommonCommand(StudyPlan plan, string peer, string runDir) =>
        ["train", "--peer", peer, "--data", Path.Combine(plan.DataDir, "train.tsv"), "--eval-data", Path.Combine(plan.DataDir, "test.tsv"), "--grid", $"{plan.GridSide}x{plan.GridSide}",
            "--hidden-dim", plan.Width.ToString(CultureInfo.InvariantCulture), .. plan.Length, "--no-publish", "--key-file", Path.Combine(runDir, "publisher.key")];

    private static string ModelDir(string runDir, string config, ulong seed) => Path.Combine(runDir, "models", $"{config}-s{seed}");

    private static StudyResult Read(StudyConfig config, ulong seed, string runDir)
    {
        try
        {
            return StudyResult.Read(config.Name, seed, Path.Combine(ModelDir(runDir, config.Name, seed), "eval.json"));
        }
        catch (InvalidDataException e)
        {
            throw new LocalnetException($"{config.Name} (seed {seed}) has no evaluation to report: {e.Message}", 1);
        }
    }

    /// <summary>Writes the report, showing the common command with the data as relative paths and the run directory as RUN.</summary>
    private static (DateTimeOffset Finished, TimeSpan? Took)? ReadRan(string file)
    {
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllBytes(file));
            return (json.RootElement.GetProperty("finished").GetDateTimeOffset(), TimeSpan.FromSeconds(json.RootElement.GetProperty("seconds").GetInt64()));
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>
    /// The sections other studies wrote into the report (between <c>&lt;!-- NAME --&gt;</c> and <c>&lt;!-- /NAME --&gt;</c>,
    /// such as scripts/churn-study's), kept when this study writes the page again; empty when there are none.
    /// </summary>
    private static string KeptSections(string reportPath)
    {
        if (!File.Exists(reportPath)) return "";
        var kept = System.Text.RegularExpressions.Regex.Matches(File.ReadAllText(reportPath), @"<!-- ([a-z-]+) -->.*?<!-- /\1 -->", System.Text.RegularExpressions.RegexOptions.Singleline);
        return string.Concat(kept.Select(m => Environment.NewLine + m.Value + Environment.NewLine));
    }

    private static void Write(StudyPlan plan, string runDir, IReadOnlyList<StudyResult> results, string reportPath, TimeProvider time, TimeSpan? took, TextWriter output)
    {
        string Shown(string a) => a.StartsWith(plan.DataDir, StringComparison.Ordinal) ? Path.GetRelativePath(Directory.GetCurrentDirectory(), a)
            : a.StartsWith(runDir, StringComparison.Ordinal) ? "RUN/" + Path.GetRelativePath(runDir, a) : a;
        string shown = $"moemesh {string.Join(' ', CommonCommand(plan, "PEER", runDir).Select(Shown))} --model NAME --seed S --out RUN/models/NAME-sS";
        // When and how long the study ran, kept beside its models so --report-only writes the page as the run did.
        var ran = Path.Combine(runDir, RanFile);
        var (finished, duration) = took is { } t ? (time.GetUtcNow(), t) : ReadRan(ran) ?? (time.GetUtcNow(), (TimeSpan?)null);
        if (took is not null) File.WriteAllText(ran, JsonSerializer.Serialize(new { finished, seconds = (long)took.Value.TotalSeconds }));
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(reportPath))!);
        File.WriteAllText(reportPath, StudyReport.Render(plan, shown, results, finished, duration) + KeptSections(reportPath));
        output.WriteLine();
        output.WriteLine($"wrote {reportPath}: {results.Count} models, {plan.Configs.Count} configurations x {plan.Seeds} seed{(plan.Seeds == 1 ? "" : "s")}");
    }
}
