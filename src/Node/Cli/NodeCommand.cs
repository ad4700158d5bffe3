using System.CommandLine;
using System.Globalization;
using MoEMesh.Dht.Node;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MoEMesh.Node.Hosting;

namespace MoEMesh.Node.Cli;

/// <summary>
/// <c>moemesh node</c>: runs the daemon. Flags override configuration (appsettings.json or --config, then
/// MOEMESH__ environment variables); the expert flags describe one group of experts (Experts:0).
/// </summary>
internal static partial class NodeCommand
{
    /// <summary>"MoEMesh:Listen: ..." as "--listen: ..." when the flag set that setting.</summary>
    private static string ByFlag(string problem, IReadOnlyDictionary<string, string> flagOf)
    {
        int colon = problem.IndexOf(": ", StringComparison.Ordinal);
        if (colon < 0 || !flagOf.TryGetValue(problem[..colon], out var flag)) return problem;
        return flag + problem[colon..].Replace($" ({flag})", "", StringComparison.Ordinal);
    }

    [LoggerMessage(EventId = 599, Level = LogLevel.Debug, Message = "The node stopped on an exception")]
    private static partial void LogFailed(ILogger logger, Exception exception);

    public static Command Create()
    {
        var config = new Option<string?>("--config") { Description = "A JSON configuration file (its settings go under \"MoEMesh\")" };
        var command = new Command("node", "Run a node: join the swarm, host experts, serve and announce them") { config };
        var map = new List<(Option Option, Func<object?, IEnumerable<(string Key, string Value)>> Settings)>();

        void Text(string name, string description, string key) =>
            Add(new Option<string?>(name) { Description = description }, v => [(key, (string)v!)]);
        void Number(string name, string description, string key) =>
            Add(new Option<double?>(name) { Description = description }, v => [(key, ((double)v!).ToString(CultureInfo.InvariantCulture))]);
        void Whole(string name, string description, string key) =>
            Add(new Option<int?>(name) { Description = description }, v => [(key, ((int)v!).ToString(CultureInfo.InvariantCulture))]);
        void Seconds(string name, string description, string key) =>
            Add(new Option<double?>(name) { Description = description }, v => [(key, TimeSpan.FromSeconds((double)v!).ToString("c", CultureInfo.InvariantCulture))]);
        void Flag(string name, string description, string key, string value) =>
            Add(new Option<bool>(name) { Description = description }, v => (bool)v! ? [(key, value)] : []);
        void List(string name, string description, string key) =>
            Add(new Option<string[]>(name) { Description = description, AllowMultipleArgumentsPerToken = true },
                v => ((string[])v!).SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).Select((s, i) => ($"{key}:{i}", s)));
        void Add(Option option, Func<object?, IEnumerable<(string, string)>> settings)
        {
            command.Options.Add(option);
            map.Add((option, settings));
        }

        const string S = NodeOptions.Section;
        Text("--listen", "host:port for the peer protocol (port 0: any free port) [0.0.0.0:7700]", $"{S}:Listen");
        Text("--http", "host:port for the HTTP API: /v1/status, /v1/query, /v1/models, /metrics [127.0.0.1:7780]", $"{S}:HttpListen");
        List("--announce", "Addresses other peers should use (default: the listen address, 127.0.0.1 for 0.0.0.0, until two peers reach this node elsewhere)", $"{S}:AnnounceAddresses");
        List("--peers", "Initial peers, host:port or PEERID@host:port, comma-separated (none: start a new swarm)", $"{S}:InitialPeers");
        Text("--key-file", "The node key, created on first start (mode 0600) [moemesh.key]", $"{S}:KeyFile");
        Flag("--client-mode", "Use the DHT only and host nothing (not needed behind a NAT: a node finds that out and takes a relay)", $"{S}:ClientMode", "true");
        Flag("--no-tls", "Switch TLS off (loopback testnets)", $"{S}:UseTls", "false");
        Flag("--no-relay", "Do not relay for peers nobody can dial (default: relay while reachable)", $"{S}:Relay:Serve", "false");
        Flag("--no-reachability-check", "Do not ask peers to dial this node back (it then never takes a relay)", $"{S}:Reachability:Check", "false");
        Text("--openblas", "Path of the OpenBLAS library, tried before this platform's usual places", $"{S}:OpenBlasPath");
        Text("--expert-type", "Expert type: ffn, mlp or identity [ffn]", $"{S}:Experts:0:Type");
        Text("--expert-pattern", "Uid pattern to take free uids from, e.g. ffn.[0:4].[0:4]", $"{S}:Experts:0:Pattern");
        Text("--expert-uid", "Host exactly this uid, e.g. ffn.0.3", $"{S}:Experts:0:Uid");
        Whole("--num-experts", "How many uids to take from the pattern [1]", $"{S}:Experts:0:Count");
        Whole("--hidden-dim", "Expert width d [1024]", $"{S}:Experts:0:HiddenDim");
        Text("--optimizer", "sgd, adam or adamw [adam]", $"{S}:Experts:0:Optimizer");
        Number("--learning-rate", "Learning rate [0.001]", $"{S}:Experts:0:LearningRate");
        Text("--checkpoint-dir", "Where expert checkpoints live [checkpoints]", $"{S}:CheckpointDirectory");
        Flag("--open-training", "Let every peer train this node's experts (open training swarms, local testnets); default: only --training-peers", $"{S}:Serving:OpenTraining", "true");
        List("--training-peers", "PeerIds allowed to train this node's experts, comma-separated", $"{S}:Serving:TrainingPeers");
        Flag("--adopt-orphans", "Take first the uids of the pattern that have published weights and no live host, newest weights first", $"{S}:Weights:AdoptOrphans", "true");
        List("--adopt-from", "PeerIds whose published weights this node adopts or averages with, comma-separated (default: any host's signed snapshot)", $"{S}:Weights:AdoptFrom");
        Seconds("--publish-period", "Seconds between snapshots of trained experts' weights, published to the swarm [300]", $"{S}:Weights:PublishPeriod");
        Seconds("--reconcile-period", "Seconds between rounds in which replicas of an expert bring their weights in step [300]", $"{S}:Weights:ReconcilePeriod");
        Flag("--no-publish", "Do not publish this node's experts' weights", $"{S}:Weights:Publish", "false");
        Text("--model-dir", "Where the models this node holds live (kept across restarts) [models]", $"{S}:ModelDirectory");
        Text("--compression", "How activations travel to experts when this node gates queries: none, fp16, bf16 or 8bit [none]", $"{S}:Routing:Compression");
        Seconds("--checkpoint-period", "Seconds between checkpoints [300]", $"{S}:CheckpointPeriod");
        Seconds("--update-period", "Seconds between announcements [30]", $"{S}:UpdatePeriod");
        Whole("--max-batch-rows", "Most rows per batch [4096]", $"{S}:Batching:MaxBatchRows");
        Whole("--concurrent-batches", "Batches of different experts run at once [one per core, at most one per expert]", $"{S}:Batching:ConcurrentBatches");
        Whole("--blas-threads", "OpenBLAS threads per batch [cores / concurrent batches]", $"{S}:BlasThreads");
        var logFormat = new Option<string?>("--log-format") { Description = "How the log is written: text (for people) or json (a JSON object per line, for log collectors) [text]" };
        logFormat.AcceptOnlyFromAmong("text", "json");
        Add(logFormat, v => [("Logging:Console:FormatterName", (string)v! == "json" ? "json" : "simple")]);

        command.SetAction(async (result, cancellationToken) =>
        {
            var flags = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            var flagOf = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var (option, settings) in map)
            {
                if (result.GetResult(option) is null) continue;
                foreach (var (key, value) in settings(result.GetValue<object?>(option.Name)))
                {
                    flags[key] = value;
                    flagOf[key] = option.Name;
                }
            }
            Microsoft.AspNetCore.Builder.WebApplication? app = null;
            ILogger? logger = null;
            try
            {
                app = NodeHost.Build([], flags, result.GetValue(config));
                logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("MoEMesh.Node");
                var node = app.Services.GetRequiredService<MeshNode>();
                // The generic host handles SIGTERM and SIGINT itself: it drains, checkpoints and exits 0.
                await NodeHost.RunAsync(app);
                if (node.UnsavedExperts.Count == 0) return 0;
                Console.Error.WriteLine($"The checkpoints of {string.Join(", ", node.UnsavedExperts)} could not be written: their training since the last checkpoint is lost (the log says why).");
                return 1;
            }
            catch (NodeConfigurationException e)
            {
                // One problem per line, so a file with several mistakes is fixed in one pass; named by the flag when a flag set it.
                var problems = e.Message.Split(Environment.NewLine).Select(p => ByFlag(p, flagOf)).ToArray();
                Console.Error.WriteLine(problems.Length == 1
                    ? $"Invalid configuration: {problems[0]}"
                    : $"Invalid configuration:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", problems)}");
                return 2;
            }
            catch (DhtBootstrapException e)
            {
                Console.Error.WriteLine(e.Message);
                return 3;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // One line for people; the stack trace for whoever sets Logging:LogLevel:Default to Debug.
                if (logger is not null) LogFailed(logger, e);
                Console.Error.WriteLine($"The node stopped: {e.Message}");
                return 1;
            }
            finally
            {
                if (app is not null) await app.DisposeAsync();
            }
        });
        return command;
    }
}
