using System.CommandLine;
using System.Globalization;
using MoEMesh.Node.Localnet.Wan;
using MoEMesh.Node.Study;

namespace MoEMesh.Node.Localnet;

/// <summary>
/// <c>moemesh localnet up|status|chaos|down</c> (what <c>scripts/localnet</c> runs): a testnet of real
/// <c>moemesh node</c> processes on loopback, with each node's configuration, key, checkpoints, models
/// and log under the run directory.
/// </summary>
internal static class LocalnetCommand
{
    private const string DefaultRunDir = "runs/localnet";

    public static Command Create()
    {
        var command = new Command("localnet", "Start, inspect, disturb and stop a testnet of moemesh node processes on this machine");
        command.Subcommands.Add(Up());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Chaos());
        command.Subcommands.Add(Down());
        command.Subcommands.Add(Demo());
        command.Subcommands.Add(Link());
        command.Subcommands.Add(Study());
        return command;
    }

    private static Option<string> RunDir() => new("--run-dir") { Description = $"Where the testnet's files live [{DefaultRunDir}]", DefaultValueFactory = _ => DefaultRunDir };

    private static Option<int> Timeout() => new("--timeout") { Description = "Seconds to wait for the nodes [60]", DefaultValueFactory = _ => 60 };

    private static Command Up()
    {
        var nodes = new Option<int>("--nodes") { Description = "Nodes to start; the first is the bootstrap peer [4]", DefaultValueFactory = _ => 4 };
        var perNode = new Option<int>("--experts-per-node") { Description = "Experts each node hosts [4]", DefaultValueFactory = _ => 4 };
        var grid = new Option<string>("--grid") { Description = "The expert grid, ROWSxCOLUMNS: uids ffn.R.C [4x4]", DefaultValueFactory = _ => "4x4" };
        var hiddenDim = new Option<int>("--hidden-dim") { Description = "Expert width d [64]", DefaultValueFactory = _ => 64 };
        var seed = new Option<int>("--seed") { Description = "Seed of which node hosts which uids [1]", DefaultValueFactory = _ => 1 };
        var noTls = new Option<bool>("--no-tls") { Description = "Switch TLS off between the nodes" };
        var runDir = RunDir();
        var timeout = Timeout();
        var wan = new WanOptions();
        var command = new Command("up", "Start the nodes and wait until every node finds every expert in the DHT") { nodes, perNode, grid, hiddenDim, seed, noTls, runDir, timeout };
        wan.AddTo(command);
        command.SetAction((result, cancellationToken) => Guarded(cancellationToken, async (probe, output, cancellationToken) =>
        {
            var (rows, columns) = ParseGrid(result.GetValue(grid)!);
            var layout = new LocalnetLayout(Within("--nodes", result.GetValue(nodes), 1, 64), Within("--experts-per-node", result.GetValue(perNode), 1, 64),
                rows, columns, Within("--hidden-dim", result.GetValue(hiddenDim), 1, 8192), result.GetValue(seed), !result.GetValue(noTls), Path.GetFullPath(result.GetValue(runDir)!),
                wan.Links(result));
            var state = await LocalnetUp.RunAsync(layout, probe, Seconds(result.GetValue(timeout)), output, cancellationToken);
            int experts = state.Nodes.SelectMany(n => n.Experts).Distinct().Count();
            output.WriteLine($"testnet up: {state.Nodes.Count} nodes hosting {experts} experts of the grid ffn {rows}x{columns} (d = {layout.HiddenDim}), TLS {(layout.UseTls ? "on" : "off")}");
            string join = $"--peers {state.Nodes[0].PeerId}@{state.Nodes[0].PeerAddress}{(layout.UseTls ? "" : " --no-tls")}";
            output.WriteLine(state.Wan is { } network
                ? $"join it from this machine with --listen {network.HostAddress}:7700 {join} (the nodes reach this machine at {network.HostAddress}); ask any node, e.g. curl {state.Nodes[0].Http}v1/status"
                : $"join it with {join}; ask any node, e.g. curl {state.Nodes[0].Http}v1/status");
            output.WriteLine($"files in {layout.RunDir}; `scripts/localnet/status` shows the nodes, `scripts/localnet/down` stops them");
            return 0;
        }));
        return command;
    }

    private static Command Status()
    {
        var runDir = RunDir();
        var command = new Command("status", "One line per node: pid, PeerId, ports, experts, load, whether it answers") { runDir };
        command.SetAction((result, cancellationToken) => Guarded(cancellationToken, async (probe, output, cancellationToken) =>
            await LocalnetStatusView.PrintAsync(Load(result.GetValue(runDir)!), probe, output, cancellationToken)));
        return command;
    }

    private static Command Chaos()
    {
        var kill = new Option<string>("--kill") { Description = "How many nodes to stop: a count (2) or a share of all nodes (25%)", Required = true };
        var signal = new Option<string>("--signal") { Description = "KILL (a crash) or TERM (a clean stop) [KILL]", DefaultValueFactory = _ => "KILL" };
        var restartAfter = new Option<string?>("--restart-after") { Description = "Start them again after this long (10s, 500ms, 2m), with the same keys and checkpoints" };
        var seed = new Option<int?>("--seed") { Description = "Seed of which nodes are stopped [random]" };
        var runDir = RunDir();
        var timeout = Timeout();
        var command = new Command("chaos", "Stop a share of the nodes (never the bootstrap node), and optionally start them again") { kill, signal, restartAfter, seed, runDir, timeout };
        command.SetAction((result, cancellationToken) => Guarded(cancellationToken, async (probe, output, cancellationToken) =>
        {
            var dir = result.GetValue(runDir)!;
            var state = Load(dir);
            int count = ParseShare(result.GetValue(kill)!, state.Nodes.Count);
            var sig = result.GetValue(signal)!.ToUpperInvariant().Replace("SIG", "", StringComparison.Ordinal);
            if (sig is not ("KILL" or "TERM")) throw new LocalnetException($"--signal must be KILL or TERM; got '{result.GetValue(signal)}'.");
            TimeSpan? delay = result.GetValue(restartAfter) is { } text ? ParseDuration("--restart-after", text) : null;
            await LocalnetChaos.RunAsync(state, Path.GetFullPath(dir), count, sig, delay, result.GetValue(seed) ?? Random.Shared.Next(), probe, Seconds(result.GetValue(timeout)), output, cancellationToken);
            return 0;
        }));
        return command;
    }

    private static Command Down()
    {
        var runDir = RunDir();
        var command = new Command("down", "Stop exactly the nodes this testnet started (SIGTERM: they drain and write checkpoints)") { runDir };
        command.SetAction((result, cancellationToken) => Guarded(cancellationToken, (probe, output, cancellationToken) =>
            LocalnetDown.RunAsync(Path.GetFullPath(result.GetValue(runDir)!), probe.Time, output, cancellationToken)));
        return command;
    }

    private static Command Demo()
    {
        var data = new Option<string>("--data") { Description = "Training data [data/train.tsv]", DefaultValueFactory = _ => "data/train.tsv" };
        var evalData = new Option<string>("--eval-data") { Description = "Evaluation data [data/test.tsv]", DefaultValueFactory = _ => "data/test.tsv" };
        var runDir = new Option<string>("--run-dir") { Description = "Where the demo's testnet lives [runs/demo]", DefaultValueFactory = _ => "runs/demo" };
        var steps = new Option<int?>("--steps") { Description = "Train this many steps instead of 2 epochs (a quick check)" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the nodes, and for each query [120]", DefaultValueFactory = _ => 120 };
        var command = new Command("demo", "Start 8 nodes, train a model, query it, kill a quarter of the nodes, query again, stop") { data, evalData, runDir, steps, timeout };
        command.SetAction((result, cancellationToken) => Guarded(cancellationToken, (probe, output, cancellationToken) =>
            LocalnetDemo.RunAsync(Path.GetFullPath(result.GetValue(runDir)!), Path.GetFullPath(result.GetValue(data)!), Path.GetFullPath(result.GetValue(evalData)!),
                result.GetValue(steps), Seconds(result.GetValue(timeout)), probe, output, cancellationToken)));
        return command;
    }

    /// <summary><c>localnet study</c>, which <c>scripts/study</c> runs: the MoECollab study on testnets, and docs/results.md.</summary>
    private static Command Study()
    {
        var tiny = new Option<bool>("--tiny") { Description = "Check that the study runs end to end: 3 nodes, the committed sample (data/), 30 steps, 1 seed" };
        var seeds = new Option<int?>("--seeds") { Description = "Seeds per configuration [3; 1 with --tiny]" };
        var dataDir = new Option<string?>("--data-dir") { Description = "Where train.tsv and test.tsv are [data/full; data with --tiny]" };
        var output = new Option<string>("--out") { Description = "The report [docs/results.md]", DefaultValueFactory = _ => "docs/results.md" };
        var runDir = new Option<string>("--run-dir") { Description = "Where the study's testnets, contributed experts and models live [runs/study]", DefaultValueFactory = _ => "runs/study" };
        var reportOnly = new Option<bool>("--report-only") { Description = "Write the report again from the models an earlier study left in --run-dir, training nothing" };
        var timeout = Timeout();
        var command = new Command("study", "Train and measure the study's models, each against a testnet of its own, and write the report") { tiny, seeds, dataDir, output, runDir, reportOnly, timeout };
        command.SetAction((result, cancellationToken) => Guarded(cancellationToken, (probe, text, cancellationToken) =>
        {
            bool isTiny = result.GetValue(tiny);
            var plan = new StudyPlan(isTiny, Within("--seeds", result.GetValue(seeds) ?? (isTiny ? 1 : 3), 1, 20),
                Path.GetFullPath(result.GetValue(dataDir) ?? (isTiny ? "data" : Path.Combine("data", "full"))));
            return result.GetValue(reportOnly)
                ? Task.FromResult(StudyRunner.Report(plan, Path.GetFullPath(result.GetValue(runDir)!), Path.GetFullPath(result.GetValue(output)!), probe.Time, text))
                : StudyRunner.RunAsync(plan, Path.GetFullPath(result.GetValue(runDir)!), Path.GetFullPath(result.GetValue(output)!), probe, Seconds(result.GetValue(timeout)), text, cancellationToken);
        }));
        return command;
    }

    /// <summary><c>localnet link</c>, which <c>up --wan</c> starts in each node's namespace: that node's link, until SIGTERM.</summary>
    private static Command Link()
    {
        var name = new Option<string>("--name") { Description = "What the link is called in its log", Required = true };
        var seed = new Option<int>("--seed") { Description = "Seed of the jitter and loss [0]" };
        var wan = new WanOptions();
        var command = new Command("link", "Shape the packets this network namespace sends (what `up --wan` runs in each node's namespace)") { name, seed, wan.Delay, wan.Jitter, wan.Loss };
        command.Hidden = true;
        command.SetAction((result, cancellationToken) => Guarded(cancellationToken, (probe, output, cancellationToken) =>
            LinkEmulator.RunAsync(result.GetValue(name)!, wan.Shape(result), result.GetValue(seed), probe.Time, output, cancellationToken)));
        return command;
    }

    /// <summary><c>--wan</c> and the shape of its links.</summary>
    private sealed class WanOptions
    {
        public Option<bool> Wan { get; } = new("--wan") { Description = "Run each node in a network namespace of its own, its packets delayed and lost as on a wide-area link (root; Linux)" };
        public Option<string?> Delay { get; } = new("--delay") { Description = $"With --wan: one-way delay of each node's link [{LinkShape.Default.Delay.TotalMilliseconds:F0}ms]" };
        public Option<string?> Jitter { get; } = new("--jitter") { Description = $"With --wan: the delay varies evenly by up to this either side [{LinkShape.Default.Jitter.TotalMilliseconds:F0}ms]" };
        public Option<string?> Loss { get; } = new("--loss") { Description = $"With --wan: the share of packets lost [{LinkShape.Default.Loss * 100:0.#}%]" };

        public void AddTo(Command command)
        {
            foreach (var option in (Option[])[Wan, Delay, Jitter, Loss]) command.Options.Add(option);
        }

        /// <summary>The links' shape with --wan; null without it (and a link flag without --wan is an error).</summary>
        public LinkShape? Links(ParseResult result)
        {
            if (result.GetValue(Wan)) return Shape(result);
            var stray = ((Option[])[Delay, Jitter, Loss]).FirstOrDefault(o => result.GetResult(o) is { Implicit: false });
            return stray is null ? null : throw new LocalnetException($"{stray.Name} shapes the links of a --wan testnet; add --wan.");
        }

        /// <summary>The shape the flags give, defaults for those not given (the jitter's within the delay).</summary>
        public LinkShape Shape(ParseResult result)
        {
            var oneWay = result.GetValue(Delay) is { } delay ? ParseDuration("--delay", delay) : LinkShape.Default.Delay;
            var shape = new LinkShape(
                oneWay,
                result.GetValue(Jitter) is { } jitter ? ParseDuration("--jitter", jitter) : Min(LinkShape.Default.Jitter, oneWay),
                result.GetValue(Loss) is { } loss ? LinkShape.ParseLoss(loss) ?? throw new LocalnetException($"--loss must be a share of packets such as 1% or 0.5%; got '{loss}'.") : LinkShape.Default.Loss);
            return shape.Problem is { } problem ? throw new LocalnetException(problem) : shape;
        }

        private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;
    }

    /// <summary>
    /// Runs a subcommand: a <see cref="LocalnetException"/> is one line on stderr and its exit code; SIGINT and
    /// SIGTERM cancel it (so the demo still stops the nodes it started) instead of ending the process.
    /// </summary>
    private static async Task<int> Guarded(CancellationToken stopped, Func<LocalnetProbe, TextWriter, CancellationToken, Task<int>> run)
    {
        using var probe = new LocalnetProbe(TimeProvider.System);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(stopped);
        using var interrupt = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Cancel);
        using var terminate = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Cancel);
        try
        {
            if (!OperatingSystem.IsLinux()) throw new LocalnetException("localnet runs on Linux (it starts node processes with setsid and reads /proc).");
            return await run(probe, Console.Out, cancel.Token);
        }
        catch (LocalnetException e)
        {
            Console.Error.WriteLine(e.Message);
            return e.ExitCode;
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            Console.Error.WriteLine("stopped on a signal; `scripts/localnet/status` shows what still runs");
            return 130;
        }

        void Cancel(System.Runtime.InteropServices.PosixSignalContext context)
        {
            context.Cancel = true;
            cancel.Cancel();
        }
    }

    private static LocalnetState Load(string runDir) =>
        LocalnetState.Load(Path.GetFullPath(runDir)) ?? throw new LocalnetException($"no testnet was started in {Path.GetFullPath(runDir)}; `scripts/localnet/up` starts one.");

    private static int Within(string flag, int value, int min, int max) =>
        value >= min && value <= max ? value : throw new LocalnetException($"{flag} must be between {min} and {max}; got {value}.");

    private static TimeSpan Seconds(int seconds) => TimeSpan.FromSeconds(Within("--timeout", seconds, 1, 3600));

    private static (int Rows, int Columns) ParseGrid(string text)
    {
        var parts = text.Split('x');
        if (parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int rows) && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int columns)
            && rows is >= 1 and <= 256 && columns is >= 1 and <= 256)
            return (rows, columns);
        throw new LocalnetException($"--grid must be ROWSxCOLUMNS with each between 1 and 256, such as 4x4; got '{text}'.");
    }

    /// <summary>"2" or "25%" of <paramref name="total"/> (rounded up), at least 1.</summary>
    private static int ParseShare(string text, int total)
    {
        if (text.EndsWith('%') && double.TryParse(text[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out double percent) && percent is > 0 and <= 100)
            return Math.Max(1, (int)Math.Ceiling(percent / 100 * total));
        if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) && count >= 1) return count;
        throw new LocalnetException($"--kill must be a count of nodes (2) or a share of them (25%); got '{text}'.");
    }

    /// <summary>"10s", "500ms", "2m", or a number of seconds; up to an hour.</summary>
    private static TimeSpan ParseDuration(string flag, string text)
    {
        var (number, unit) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : (text, 1.0);
        if (double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value * unit is >= 0 and <= 3600)
            return TimeSpan.FromSeconds(value * unit);
        throw new LocalnetException($"{flag} must be a duration such as 10s, 500ms or 2m (at most an hour); got '{text}'.");
    }
}
