using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Testing.Fuzzing;

using MoEMesh.Testing;

namespace MoEMesh.Benchmarks.Soak;

/// <summary>
/// The long reliability suite. On a testnet of real `moemesh node` processes: first a model is trained
/// without churn (the reference) and published; then, for the soak's length, steady queries of that model
/// to random live nodes and training runs of another one go on while a node other than the first two is
/// stopped every 30 s, by SIGKILL and SIGTERM in turn, and started again 10 s later; meanwhile node 1 takes
/// the fuzz cases (peer methods and HTTP). Prints one table: queries, latency, training, memory, what
/// restarts lost, fuzz crashes.
/// </summary>
internal sealed class SoakRun(TimeSpan length, int nodes, int steps, int fuzzCases, int seed, string runDir)
{
    /// <summary>Runs the soak, prints its table and writes it into <paramref name="page"/> (between the soak markers).</summary>
    public static async Task<int> MainAsync(int minutes, int nodes, int steps, int fuzzCases, int seed, string page)
    {
        if (minutes < 1 || nodes < 4 || steps < 1 || fuzzCases < 0)
        {
            Console.Error.WriteLine("soak: --minutes at least 1, --nodes at least 4, --steps at least 1, --fuzz at least 0");
            return 2;
        }
        var runDir = Path.Combine(Testing.RepositoryRoot.Path, "runs", "soak");
        var table = await new SoakRun(TimeSpan.FromMinutes(minutes), nodes, steps, fuzzCases, seed, runDir).RunAsync();
        var section = new StringBuilder()
            .AppendLine("<!-- soak -->")
            .AppendLine($"Written by `scripts/soak --minutes {minutes} --nodes {nodes} --steps {steps} --fuzz {fuzzCases} --seed {seed}` on {DateTime.UtcNow:yyyy-MM-dd}, "
                + $"{Environment.ProcessorCount} cores; logs in runs/soak/.")
            .AppendLine()
            .Append(table)
            .AppendLine("<!-- /soak -->")
            .ToString();
        Console.WriteLine();
        Console.WriteLine(section);
        var text = File.Exists(page) ? File.ReadAllText(page) : "";
        int from = text.IndexOf("<!-- soak -->", StringComparison.Ordinal), to = text.IndexOf("<!-- /soak -->", StringComparison.Ordinal);
        text = from >= 0 && to > from ? text[..from] + section + text[(to + "<!-- /soak -->".Length)..].TrimStart('\r', '\n') : text + Environment.NewLine + section;
        File.WriteAllText(page, text);
        Console.WriteLine($"written to {page}");
        return 0;
    }

    private static readonly TimeSpan StopEvery = TimeSpan.FromSeconds(30), DownFor = TimeSpan.FromSeconds(10);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly QueryTally _queries = new();
    private readonly List<double> _churnAccuracy = [];
    private long _churnSteps;
    private int _churnFailedRuns;
    private int _checkpointsLost, _checkpointsKept, _recordsLost, _recordsKept, _stops;
    private readonly FuzzTally _fuzz = new();

    public async Task<string> RunAsync()
    {
        if (Directory.Exists(runDir)) Directory.Delete(runDir, recursive: true);
        Directory.CreateDirectory(runDir);
        using var net = new SoakNet(runDir, 7970);
        Say($"starting {nodes} nodes");
        for (int i = 0; i < nodes; i++) await net.StartAsync(net.Add());

        Say($"reference: training {steps} steps without churn, then publishing the model 'soak-ref' for the queries");
        double reference = await TrainAsync(net, "soak-ref", publish: true) ?? throw new InvalidOperationException($"the reference training failed; see {runDir}/train-soak-ref.log");
        Say($"reference accuracy {reference:P2}");
        await UntilAsync(async () => (await Task.WhenAll(net.Nodes.Select(n => ListsModelAsync(net, n, "soak-ref")))).All(b => b), "every node lists soak-ref");

        Say($"soak: {length.TotalMinutes:F0} min of queries, training and stops, and {fuzzCases} fuzz cases against node 1");
        using var end = new CancellationTokenSource(length);
        var texts = File.ReadLines(Path.Combine(Testing.RepositoryRoot.Path, "data", "test.tsv")).Skip(1).Select(l => l.Split('\t')[^1]).Take(500).ToArray();
        var work = new[]
        {
            QueryLoadAsync(net, texts, end.Token),
            TrainUnderChurnAsync(net, end.Token),
            StopAndStartAsync(net, end.Token),
            FuzzAsync(net, net.Nodes[1]),
            WarmUpAsync(net),
        };
        await Task.WhenAll(work);
        Say("soak over");
        await UntilAsync(async () => (await Task.WhenAll(net.Nodes.Select(n => ListsModelAsync(net, n, "soak-ref")))).All(b => b), "every node lists soak-ref after the soak");
        return Report(net, reference);
    }

    /// <summary>How long the load runs before each node's memory is taken as its start: caches filled, the GC's heap sized to the load.</summary>
    private TimeSpan WarmUp => TimeSpan.FromTicks(Math.Min(TimeSpan.FromMinutes(1).Ticks, length.Ticks / 5));

    private async Task WarmUpAsync(SoakNet net)
    {
        await Task.Delay(WarmUp);
        foreach (var n in net.Nodes.Where(n => n.Up)) n.StartBytes = n.Process!.ResidentBytes;
        Say($"memory after the warm-up: {string.Join(", ", net.Nodes.Select(n => $"node {n.Index} {n.StartBytes / 1e6:F0} MB"))}");
    }

    /// <summary>Runs `moemesh train` for the soak's steps; the accuracy its evaluation printed, or null when it did not finish.</summary>
    private async Task<double?> TrainAsync(SoakNet net, string model, bool publish, CancellationToken cancellationToken = default)
    {
        var peer = net.Nodes[0];
        string[] args =
        [
            "train", "--peer", $"127.0.0.1:{peer.PeerPort}", "--no-tls", "--data", Path.Combine(Testing.RepositoryRoot.Path, "data", "train.tsv"),
            "--eval-data", Path.Combine(Testing.RepositoryRoot.Path, "data", "test.tsv"), "--model", model, "--steps", steps.ToString(CultureInfo.InvariantCulture),
            "--seed", seed.ToString(CultureInfo.InvariantCulture), "--out", $"out-{model}", "--key-file", "publisher.key", "--freeze-experts",
            .. publish ? Array.Empty<string>() : ["--no-publish"],
        ];
        using var trainer = MoEMeshProcess.Start(runDir, args, Path.Combine(runDir, $"train-{model}.log"));
        using (cancellationToken.Register(trainer.Terminate))
            await trainer.WaitForExitAsync(TimeSpan.FromHours(1));
        var eval = Path.Combine(runDir, $"out-{model}", "eval.json");
        if (!File.Exists(eval)) return null;
        using var json = JsonDocument.Parse(File.ReadAllText(eval));
        File.Delete(eval);
        return json.RootElement.GetProperty("accuracy").GetDouble();
    }

    /// <summary>Training runs of the soak's steps, one after another, until the soak ends.</summary>
    private async Task TrainUnderChurnAsync(SoakNet net, CancellationToken end)
    {
        for (int run = 1; !end.IsCancellationRequested; run++)
        {
            var accuracy = await TrainAsync(net, $"soak-{run}", publish: false, end);
            if (end.IsCancellationRequested) continue;
            if (accuracy is not { } a)
            {
                _churnFailedRuns++;
                Say($"training run {run} under churn did not finish; see {runDir}/train-soak-{run}.log");
                continue;
            }
            _churnAccuracy.Add(a);
            _churnSteps += steps;
            Say($"training run {run} under churn: accuracy {a:P2}");
        }
    }

    /// <summary>Queries of the reference model, one at a time, each to a random node that is up.</summary>
    private async Task QueryLoadAsync(SoakNet net, string[] texts, CancellationToken end)
    {
        var random = new Random(seed);
        while (!end.IsCancellationRequested)
        {
            var up = net.Nodes.Where(n => n.Up).ToArray();
            var node = up[random.Next(up.Length)];
            bool outage = net.Nodes.Any(n => !n.Up);
            var body = JsonSerializer.Serialize(new { model = "soak-ref", text = texts[random.Next(texts.Length)] });
            var started = Stopwatch.GetTimestamp();
            try
            {
                using var response = await net.Http.PostAsync($"http://127.0.0.1:{node.HttpPort}/v1/query", new StringContent(body, Encoding.UTF8, "application/json"), CancellationToken.None);
                var text = await response.Content.ReadAsStringAsync(CancellationToken.None);
                var elapsed = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                if (!response.IsSuccessStatusCode)
                {
                    // A node stopped while it answered is not a failure of the swarm (a client asks another); a live node's is.
                    if (node.Up) _queries.Fail(outage, $"{(int)response.StatusCode} {text}");
                    else _queries.LostToStop();
                    continue;
                }
                using var answer = JsonDocument.Parse(text);
                var outcomes = answer.RootElement.GetProperty("results")[0].GetProperty("route").EnumerateArray().Select(h => h.GetProperty("outcome").GetString()).ToArray();
                _queries.Answer(elapsed, outage, outcomes.Contains("fallback") ? QueryRoute.FellBack : outcomes.Any(o => o is "timeout" or "failed") ? QueryRoute.Degraded : QueryRoute.Complete);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                if (node.Up) _queries.Fail(outage, e.Message);
                else _queries.LostToStop();
            }
        }
    }

    /// <summary>Every 30 s stops a node other than the first two (SIGKILL and SIGTERM in turn) and starts it 10 s later; checks what it kept.</summary>
    private async Task StopAndStartAsync(SoakNet net, CancellationToken end)
    {
        var observer = net.Nodes[0];
        for (int k = 0; ; k++)
        {
            try
            {
                await Task.Delay(StopEvery - DownFor, end);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var node = net.Nodes[2 + k % (net.Nodes.Count - 2)];
            bool kill = k % 2 == 0;
            var peerId = await net.PeerIdAsync(node);
            var hosted = (await net.UpdatesAsync(node)).Keys.ToArray();
            node.Up = false;
            if (kill) node.Process!.Kill();
            else node.Process!.Terminate();
            await node.Process.WaitForExitAsync(TimeSpan.FromMinutes(1));
            var saved = net.Checkpointed(node);
            _stops++;
            Say($"stopped node {node.Index} by {(kill ? "SIGKILL" : "SIGTERM")}; {saved.Count} checkpoints on disk");
            await Task.Delay(DownFor, CancellationToken.None);
            await net.StartAsync(node);
            node.Restarts++;

            // Each checkpoint restores at the update count it holds; each expert is found again within two update periods.
            var restored = await net.UpdatesAsync(node);
            foreach (var (uid, updates) in saved)
            {
                if (restored.GetValueOrDefault(uid, -1) >= updates) _checkpointsKept++;
                else
                {
                    _checkpointsLost++;
                    Say($"  node {node.Index}: {uid} restored at update {restored.GetValueOrDefault(uid, -1)}, its checkpoint holds {updates}");
                }
            }
            var found = DateTime.UtcNow + 2 * SoakNet.UpdatePeriod + TimeSpan.FromSeconds(5);
            foreach (var uid in hosted)
            {
                while (!await net.SeesAsync(observer, uid, peerId) && DateTime.UtcNow < found) await Task.Delay(200, CancellationToken.None);
                if (await net.SeesAsync(observer, uid, peerId)) _recordsKept++;
                else
                {
                    _recordsLost++;
                    Say($"  node {node.Index}: node 0 does not find it hosting {uid}");
                }
            }
        }
    }

    /// <summary>The fuzz cases against <paramref name="target"/>: nine in ten peer requests, one in ten HTTP requests.</summary>
    private async Task FuzzAsync(SoakNet net, SoakNode target)
    {
        using var identity = PeerIdentity.Create();
        await using var pool = new PeerConnectionPool(identity, new PeerProtocolOptions { UseTls = false }, TimeProvider.System);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{target.HttpPort}"), Timeout = TimeSpan.FromMinutes(1) };
        string[] uids = [.. (await net.UpdatesAsync(target)).Keys];
        var peer = new PeerFuzzer(new TcpPeerTransport(pool, TimeProvider.System), new PeerEndpoint(new PeerAddress("127.0.0.1", target.PeerPort)), TimeProvider.System, uids, 64);
        var web = new HttpFuzzer(http, uids);
        const int Round = 1000;
        for (int round = 0; round * Round < fuzzCases; round++)
        {
            int cases = Math.Min(Round, fuzzCases - round * Round);
            var tally = round % 10 == 9 ? await web.RunAsync(cases, seed * 1000 + round, CancellationToken.None) : await peer.RunAsync(cases, seed * 1000 + round, CancellationToken.None);
            _fuzz.Add(tally);
            if (round % 20 == 19 || (round + 1) * Round >= fuzzCases) Say($"fuzz: {_fuzz.Cases} cases, {_fuzz.CrashCount} crashes");
        }
    }

    private static async Task<bool> ListsModelAsync(SoakNet net, SoakNode node, string model)
    {
        try
        {
            return (await net.Http.GetStringAsync($"http://127.0.0.1:{node.HttpPort}/v1/models")).Contains($"\"{model}\"", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!await condition())
        {
            if (DateTime.UtcNow > until) throw new InvalidOperationException($"not within 2 minutes: {what}");
            await Task.Delay(500);
        }
    }

    private string Report(SoakNet net, double reference)
    {
        var q = _queries;
        double churned = _churnAccuracy.Count > 0 ? _churnAccuracy.Average() : double.NaN;
        var table = new StringBuilder();
        table.AppendLine("| measure | figure | goal | |");
        table.AppendLine("|---|---:|---|---|");
        table.AppendLine($"| queries sent | {q.Sent} | | |");
        table.AppendLine($"| answered | {q.Answered} ({Share(q.Answered, q.Sent - q.Stopped)} of those not cut by a node's stop) | all | {Met(q.Failed == 0)} |");
        table.AppendLine($"| answered by every chosen expert (a replica standing in where a host was down) | {q.Complete} | | |");
        table.AppendLine($"| of those, while a node was down | {q.CompleteInOutage} | | |");
        table.AppendLine($"| answered with a local fallback for some expert | {q.FellBack} | | |");
        table.AppendLine($"| answered with some chosen expert missing (a timeout or failure, no fallback) | {q.Degraded} | | |");
        table.AppendLine($"| cut by the stop of the node asked (a client asks another) | {q.Stopped} | | |");
        table.AppendLine($"| failed at a node that was up | {q.Failed} | 0 | {Met(q.Failed == 0)} |");
        table.AppendLine($"| latency of answered queries, p50 / p99 | {q.Percentile(0.5):F1} ms / {q.Percentile(0.99):F1} ms | | |");
        table.AppendLine($"| training runs under churn (frozen experts, {steps} steps each) | {_churnAccuracy.Count} finished, {_churnFailedRuns} did not; {_churnSteps} steps | all finish | {Met(_churnFailedRuns == 0)} |");
        table.AppendLine($"| accuracy under churn (mean of runs) / the reference without churn | {churned:P2} / {reference:P2} ({(churned - reference) * 100:+0.00;-0.00} points) | within 1 point | {Met(Math.Abs(churned - reference) <= 0.01)} |");
        table.AppendLine($"| node stops (SIGKILL and SIGTERM in turn) | {_stops} | | |");
        table.AppendLine($"| checkpoints lost after restarts | {_checkpointsLost} of {_checkpointsLost + _checkpointsKept} | 0 | {Met(_checkpointsLost == 0)} |");
        table.AppendLine($"| expert records lost after restarts (not found within 2 update periods + 5 s) | {_recordsLost} of {_recordsLost + _recordsKept} | 0 | {Met(_recordsLost == 0)} |");
        table.AppendLine($"| fuzz cases against node 1 | {_fuzz.Cases} | | |");
        table.AppendLine($"| fuzz crashes (an Internal status, a dropped call, a 5xx) | {_fuzz.CrashCount} | 0 | {Met(_fuzz.CrashCount == 0)} |");
        foreach (var n in net.Nodes)
        {
            long end = n.Process!.ResidentBytes;
            string figure = n.Restarts > 0 || n.StartBytes == 0
                ? $"{end / 1e6:F0} MB at the end (restarted {n.Restarts} times: a younger process)"
                : $"{n.StartBytes / 1e6:F0} MB / {end / 1e6:F0} MB ({(end - n.StartBytes) / (double)n.StartBytes:+0.0%;-0.0%})";
            bool judged = n.Restarts == 0 && n.StartBytes > 0;
            table.AppendLine($"| node {n.Index} resident memory, after a {WarmUp.TotalSeconds:F0} s warm-up / at the end | {figure} | {(judged ? "growth under 10 %" : "")} | {(judged ? Met(end < n.StartBytes * 1.1) : "")} |");
        }
        if (q.Failures.Count > 0) table.AppendLine().AppendLine("First failures: " + string.Join("; ", q.Failures.Take(5)));
        if (_fuzz.Crashes.Count > 0) table.AppendLine().AppendLine("First fuzz crashes: " + string.Join("; ", _fuzz.Crashes.Take(5)));
        return table.ToString();
    }

    private static string Share(long part, long whole) => whole == 0 ? "-" : $"{(double)part / whole:P2}";

    private static string Met(bool met) => met ? "met" : "not met";

    private void Say(string line) => Console.WriteLine($"[{_clock.Elapsed:mm\\:ss}] {line}");

    /// <summary>How an answered query's text went through the layers.</summary>
    private enum QueryRoute
    {
        /// <summary>Every chosen expert answered from a host.</summary>
        Complete,

        /// <summary>A local expert stood in for some chosen expert.</summary>
        FellBack,

        /// <summary>Some chosen expert gave no answer (timeout or failure) and nothing stood in; the others' answers carried it.</summary>
        Degraded,
    }

    /// <summary>The queries' outcomes and latencies; each query is counted once.</summary>
    private sealed class QueryTally
    {
        private readonly List<double> _milliseconds = [];

        public long Sent { get; private set; }

        public long Answered => Complete + FellBack + Degraded;

        public long Complete { get; private set; }

        public long CompleteInOutage { get; private set; }

        public long FellBack { get; private set; }

        public long Degraded { get; private set; }

        public long Stopped { get; private set; }

        public long Failed { get; private set; }

        public List<string> Failures { get; } = [];

        public void Answer(double milliseconds, bool outage, QueryRoute route)
        {
            lock (_milliseconds)
            {
                Sent++;
                _milliseconds.Add(milliseconds);
                switch (route)
                {
                    case QueryRoute.Complete:
                        Complete++;
                        if (outage) CompleteInOutage++;
                        break;
                    case QueryRoute.FellBack:
                        FellBack++;
                        break;
                    default:
                        Degraded++;
                        break;
                }
            }
        }

        public void LostToStop()
        {
            lock (_milliseconds)
            {
                Sent++;
                Stopped++;
            }
        }

        public void Fail(bool outage, string why)
        {
            lock (_milliseconds)
            {
                Sent++;
                Failed++;
                if (Failures.Count < 20) Failures.Add($"{why}{(outage ? " (a node was down)" : "")}");
            }
        }

        public double Percentile(double p)
        {
            lock (_milliseconds)
            {
                if (_milliseconds.Count == 0) return double.NaN;
                var sorted = _milliseconds.Order().ToArray();
                return sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
            }
        }
    }
}
