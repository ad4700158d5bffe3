using System.CommandLine;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing.Gating;
using MoEMesh.Routing.Models;
using MoEMesh.Settings;

namespace MoEMesh.Node.Cli;

/// <summary>
/// <c>moemesh train</c>: this process becomes a gating node of the swarm (joined through --peer), trains
/// trunk, gates and head locally and the experts on their hosts through backward calls, evaluates, saves
/// the model file under --out and publishes it to --replicas nodes. Exit codes: 0 done, 1 training or
/// publishing failed, 2 bad flags or data, 3 the swarm cannot serve it (peer unreachable, no expert of
/// the grid). SIGINT or SIGTERM stops at the next step boundary and still saves and publishes what was trained.
/// </summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var peer = CommonOptions.Peer();
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var compression = CommonOptions.Compression();
        var data = new DataOptions();
        var model = new Option<string>("--model") { Description = "The model's name (letters, digits, '.', '_', '-')", Required = true };
        var evalData = new Option<string?>("--eval-data") { Description = "A separate evaluation file (same format and columns)" };
        var evalSplit = new Option<double?>("--eval-split") { Description = "Share of the data held out for evaluation, stratified by label [0.1 without --eval-data]" };
        var grid = new Option<string>("--grid") { Description = "The expert grid's sizes, e.g. 4x4", DefaultValueFactory = _ => "4x4" };
        var gridName = new Option<string>("--grid-name") { Description = "The experts' uid name: ffn for ffn.0.0 ...", DefaultValueFactory = _ => "ffn" };
        var expertType = new Option<string?>("--expert-type") { Description = "The expert type to use (default: the one the swarm hosts)" };
        var layers = new Option<int>("--layers") { Description = "Mixture-of-experts layers", DefaultValueFactory = _ => 1 };
        var k = new Option<int>("--k") { Description = "Experts per text and layer", DefaultValueFactory = _ => 2 };
        var topP = new Option<double?>("--top-p") { Description = "Dynamic top-p: use experts until their gate mass reaches P (off)" };
        var nullExperts = new Option<int>("--null-experts") { Description = "AdaMoE null experts per layer", DefaultValueFactory = _ => 0 };
        var sharedExpert = new Option<bool>("--shared-expert")
        {
            Description = "Give each layer a shared expert (an ffn of inner width 4d) that every text passes through beside the routed ones; it lives in the model, so texts still get a trained answer when remote experts fail",
        };
        var hiddenDim = new Option<int?>("--hidden-dim") { Description = "Width d (default: the width of the swarm's experts)" };
        var buckets = new Option<int?>("--buckets") { Description = "Rows of the trunk's hashed embedding [65536, fewer when d is wide so the table stays within 64 MB]" };
        var epochs = new Option<int?>("--epochs") { Description = "Passes over the data [3]" };
        var steps = new Option<int?>("--steps") { Description = "Steps to take instead of --epochs" };
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per step", DefaultValueFactory = _ => 32 };
        var lr = new Option<float>("--lr") { Description = "Learning rate of trunk, gates and head (Adam)", DefaultValueFactory = _ => 0.01f };
        var marginalEntropy = new Option<float>("--marginal-entropy-weight") { Description = "Weight of the batch's routing entropy per grid dimension, maximised: spreads the load over the grid's rows and columns", DefaultValueFactory = _ => 0f };
        var sampleEntropy = new Option<float>("--sample-entropy-weight") { Description = "Weight of each text's routing entropy, minimised: confident routing", DefaultValueFactory = _ => 0f };
        var balance = new Option<float>("--balance-weight") { Description = "Load-balancing loss weight", DefaultValueFactory = _ => 0.01f };
        var zLoss = new Option<float>("--z-loss-weight") { Description = "Router z-loss weight", DefaultValueFactory = _ => 0.001f };
        var seed = new Option<ulong>("--seed") { Description = "Seed of weights, split and batch order", DefaultValueFactory = _ => 1UL };
        var output = new Option<string?>("--out") { Description = "Where the model file, curves.csv and eval.json go [runs/NAME]" };
        var replicas = new Option<int>("--replicas") { Description = "Nodes to hold the published model (all the swarm has if fewer)", DefaultValueFactory = _ => 3 };
        var noPublish = new Option<bool>("--no-publish") { Description = "Save the model file only" };
        var dense = new Option<int?>("--dense")
        {
            Description = "Train a dense baseline instead: each layer an ffn of this inner width, no gate and no routed experts (--hidden-dim sets d, 64 by default)",
        };
        var freezeExperts = new Option<bool>("--freeze-experts")
        {
            Description = "Keep the swarm's experts as their contributors trained them: train trunk, gates and head only (the experts give input gradients and take no step; any host allows that)",
        };
        var trunkFrom = new Option<string?>("--trunk-from")
        {
            Description = "Start the trunk from this model's, a model file or a published model's name (its width and buckets are taken): the trunk contributors trained their experts on",
        };
        var freezeTrunk = new Option<bool>("--freeze-trunk") { Description = "Keep the trunk from --trunk-from as it is: the representation contributed experts were trained on stays put" };
        var keyFile = new Option<string?>("--key-file") { Description = "The publisher key that signs the model (created if missing) [~/.moemesh/publisher.key]" };
        var metrics = new Option<string?>("--metrics")
        {
            Description = "Serve the trainer's metrics (steps, loss, utilisation, expert calls; Prometheus text) at http://HOST:PORT/metrics while it runs, e.g. 127.0.0.1:9464",
        };
        var command = new Command("train", "Train a model on a data file against the swarm's experts, then save and publish it")
        {
            peer, noTls, timeout, compression, model, evalData, evalSplit, grid, gridName, expertType, layers, k, topP, nullExperts, sharedExpert, hiddenDim, buckets,
            epochs, steps, batchSize, lr, marginalEntropy, sampleEntropy, balance, zLoss, seed, output, replicas, noPublish, freezeExperts, dense, trunkFrom, freezeTrunk, keyFile, metrics,
        };
        data.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            // Every flag is checked before the data is read or the swarm joined, each named in its message.
            var name = result.GetValue(model)!;
            if (!ModelFile.IsValidName(name, out var nameError)) return Fail($"--model: {nameError}");
            if (ParseGrid(result.GetValue(grid)!) is not { } sizes) return Fail($"--grid: '{result.GetValue(grid)}' is not sizes like 4x4 or 8x8x8 (1 to 8 dimensions, each 1 to 4096).");
            ExpertGrid expertGrid;
            try
            {
                expertGrid = new ExpertGrid(result.GetValue(gridName)!, sizes);
            }
            catch (ArgumentException e)
            {
                return Fail($"--grid-name: {e.Message}");
            }
            PeerAddress metricsAddress = default;
            var losses = new RouterLossWeights(result.GetValue(balance), result.GetValue(zLoss), result.GetValue(marginalEntropy), result.GetValue(sampleEntropy));
            var checks = new (bool Bad, string Problem)[]
            {
                (result.GetValue(epochs) is not null && result.GetValue(steps) is not null, "--epochs and --steps: give one of them, not both."),
                (result.GetValue(evalData) is not null && result.GetValue(evalSplit) is not null, "--eval-data and --eval-split: give one of them, not both."),
                (result.GetValue(evalSplit) is { } split && !(split > 0 && split < 1), $"--eval-split must be between 0 and 1; got {result.GetValue(evalSplit)}."),
                (result.GetValue(layers) is < 1 or > 16, $"--layers must be between 1 and 16; got {result.GetValue(layers)}."),
                (result.GetValue(k) is < 1 or > 64, $"--k must be between 1 and 64; got {result.GetValue(k)}."),
                (result.GetValue(topP) is { } p && !(p > 0 && p <= 1), $"--top-p must be above 0 and at most 1; got {result.GetValue(topP)}."),
                (result.GetValue(nullExperts) is < 0 or > 64, $"--null-experts must be between 0 and 64; got {result.GetValue(nullExperts)}."),
                (result.GetValue(hiddenDim) is < 1 or > 8192, $"--hidden-dim must be between 1 and 8192; got {result.GetValue(hiddenDim)}."),
                (result.GetValue(buckets) is < 1 or > 1 << 24, $"--buckets must be between 1 and {1 << 24}; got {result.GetValue(buckets)}."),
                (!losses.AreValid, "--balance-weight, --z-loss-weight, --marginal-entropy-weight and --sample-entropy-weight must be finite and not negative."),
                (result.GetValue(replicas) < 1, $"--replicas must be at least 1; got {result.GetValue(replicas)}."),
                (result.GetValue(dense) is < 1 or > 65_536, $"--dense must be an inner width between 1 and 65536; got {result.GetValue(dense)}."),
                (result.GetValue(dense) is not null && (result.GetValue(topP) is not null || result.GetValue(nullExperts) > 0 || result.GetValue(sharedExpert) || result.GetValue(freezeExperts)),
                    "--dense trains a model without routed experts: --top-p, --null-experts, --shared-expert and --freeze-experts do not apply."),
                (result.GetValue(freezeTrunk) && result.GetValue(trunkFrom) is null, "--freeze-trunk keeps a trunk taken from another model: give --trunk-from with it."),
                (result.GetValue(metrics) is { } m && !PeerAddress.TryParseListen(m, out metricsAddress), $"--metrics: '{result.GetValue(metrics)}' is not HOST:PORT to listen on, such as 127.0.0.1:9464."),
            };
            if (checks.FirstOrDefault(c => c.Bad) is { Problem: not null } failed) return Fail(failed.Problem);
            // --trunk-from names a model file (read now) or a published model (fetched once the swarm is joined).
            LoadedModelFile? trunkSource = null;
            string? trunkName = result.GetValue(trunkFrom);
            bool trunkIsFile = trunkName is not null && (File.Exists(trunkName) || trunkName.EndsWith(ModelFile.Extension, StringComparison.Ordinal) || !ModelFile.IsValidName(trunkName, out _));
            string? TrunkMismatch(LoadedModelFile source) =>
                result.GetValue(hiddenDim) is { } d && d != source.Spec.Trunk.Width ? $"--hidden-dim {d}: the trunk of {trunkName} has width {source.Spec.Trunk.Width}; leave --hidden-dim out to take it."
                : result.GetValue(buckets) is { } b && b != source.Spec.Trunk.Buckets ? $"--buckets {b}: the trunk of {trunkName} has {source.Spec.Trunk.Buckets} buckets; leave --buckets out to take it."
                : null;
            if (trunkIsFile)
            {
                if (CommonOptions.TrunkFrom(trunkName!) is not { } loaded) return 2;
                trunkSource = loaded;
                if (TrunkMismatch(trunkSource) is { } mismatch) return Fail(mismatch);
            }
            if (CommonOptions.Routing(result.GetValue(compression)!) is not { } routing) return 2;
            var training = new TrainingOptions
            {
                Epochs = result.GetValue(epochs) ?? 3,
                Steps = result.GetValue(steps),
                BatchSize = result.GetValue(batchSize),
                LearningRate = result.GetValue(lr),
                Seed = result.GetValue(seed),
            };
            if (SettingsValidation.Problems(training, "").FirstOrDefault() is { } bad)
                return Fail($"{TrainingFlags[bad.Setting.TrimStart(':')]}: {bad.Problem}.");
            var outDir = result.GetValue(output) ?? Path.Combine("runs", name);
            try
            {
                Directory.CreateDirectory(outDir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return Fail($"--out: {outDir} cannot be made a folder: {e.Message}");
            }

            var columns = data.Columns(result, new DataColumns(DomainColumn: "domain"));
            if (data.Read(result, result.GetValue(data.Data)!, columns) is not { } file) return 2;
            if (file.Examples.All(e => e.Domain is null)) columns = columns with { DomainColumn = null };
            IReadOnlyList<Example> trainSet = file.Examples, evalSet;
            if (result.GetValue(evalData) is { } evalPath)
            {
                if (data.Read(result, evalPath, columns) is not { } evalFile) return 2;
                evalSet = evalFile.Examples;
            }
            else
            {
                (trainSet, evalSet) = EvalSplit.Of(file.Examples, result.GetValue(evalSplit) ?? 0.1, result.GetValue(seed));
            }
            var labels = trainSet.Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
            if (labels.Length < 2) return Fail($"{file.Path}: the training data has {labels.Length} label; a classifier needs at least 2.");
            var unseen = evalSet.Count(e => Array.BinarySearch(labels, e.Label, StringComparer.Ordinal) < 0);
            if (unseen > 0) Console.Error.WriteLine($"{unseen} evaluation rows have labels the training data lacks; they count as wrong.");
            if (evalSet.Count == 0) Console.Error.WriteLine("no text is left for evaluation (each label has too few rows to split); give --eval-data to measure the model.");
            Console.WriteLine($"training on {trainSet.Count} texts, evaluating on {evalSet.Count}, {labels.Length} labels");

            TrainerMetrics? served = null;
            if (result.GetValue(metrics) is not null && (served = await TrainerMetrics.StartAsync(metricsAddress, cancellationToken)) is null) return 2;
            await using var stopServing = served;
            PeerIdentity publisher;
            try
            {
                publisher = PeerIdentity.LoadOrCreate(result.GetValue(keyFile) ?? DefaultKeyFile());
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                return Fail($"--key-file: {e.Message}");
            }
            using (publisher)
            {
                // The trainer calls experts as its publisher key, so hosts can allow exactly it to train their experts.
                var (swarm, exit) = await SwarmClient.JoinAsync(result.GetValue(peer)!, !result.GetValue(noTls), result.GetValue(timeout), routing, publisher, cancellationToken, served?.Telemetry);
                if (swarm is null) return exit;
                Console.WriteLine(result.GetValue(freezeExperts)
                    ? $"training as {publisher.PeerId}, the experts frozen: trunk, gates and head learn, the experts stay as they are"
                    : $"training as {publisher.PeerId} (hosts that do not run --open-training take training only from the PeerIds in their --training-peers)");
                await using (swarm)
                {
                    if (trunkName is not null && !trunkIsFile)
                    {
                        var (fetched, fetchFailed) = await swarm.FetchModelAsync(trunkName, cancellationToken);
                        if (fetched is null) return fetchFailed;
                        trunkSource = fetched.Model;
                        if (TrunkMismatch(trunkSource) is { } mismatch) return Fail(mismatch);
                    }
                    LayerSpec layer;
                    if (result.GetValue(dense) is { } inner)
                    {
                        // A dense baseline: no gate and no routed experts, nothing to probe the swarm for.
                        int denseWidth = result.GetValue(hiddenDim) ?? trunkSource?.Spec.Trunk.Width ?? 64;
                        layer = new LayerSpec(expertGrid.Name, [1], "dense", denseWidth, K: 0, SharedExpertInner: inner);
                    }
                    else
                    {
                        var (kind, problem) = await GridProbe.ProbeAsync(swarm, expertGrid, result.GetValue(expertType), result.GetValue(hiddenDim) ?? trunkSource?.Spec.Trunk.Width, cancellationToken);
                        if (kind is null)
                        {
                            Console.Error.WriteLine(problem);
                            return 3;
                        }
                        layer = new LayerSpec(expertGrid.Name, sizes, kind.Type, kind.Width, result.GetValue(k), result.GetValue(topP), result.GetValue(nullExperts), RouterLosses: losses,
                            SharedExpertInner: result.GetValue(sharedExpert) ? 4 * kind.Width : 0);
                    }
                    int width = layer.ExpertWidth;
                    var spec = new ModelSpec(new TrunkSpec(result.GetValue(buckets) ?? trunkSource?.Spec.Trunk.Buckets ?? DefaultBuckets(width), width), Enumerable.Repeat(layer, result.GetValue(layers)).ToArray(),
                        new HeadSpec(labels), columns);
                    try
                    {
                        spec.Validate();
                    }
                    catch (ArgumentException e)
                    {
                        return Fail(e.Message);
                    }
                    Console.WriteLine(layer.IsDense
                        ? $"dense: {spec.Layers.Count} layer(s) of an ffn of inner width {layer.SharedExpertInner}, no routed experts; trunk {spec.Trunk.Buckets} x {width}"
                        : $"experts: {layer.ExpertType} of width {width} on the grid {expertGrid.Name} {string.Join('x', sizes)}; {spec.Layers.Count} layer(s), k = {layer.K}"
                          + $"{(layer.SharedExpertInner > 0 ? $", a shared expert of inner width {layer.SharedExpertInner}" : "")}; trunk {spec.Trunk.Buckets} x {width}");
                    var weights = ModelWeights.Initialize(spec, training.Seed);
                    if (trunkSource is not null)
                    {
                        try
                        {
                            weights.TakeTrunk(trunkSource.Spec.Trunk, trunkSource.Weights.Trunk, spec.Trunk);
                        }
                        catch (ArgumentException e)
                        {
                            return Fail($"--trunk-from {result.GetValue(trunkFrom)}: {e.Message}");
                        }
                        Console.WriteLine($"trunk from {trunkSource.Name} version {trunkSource.Version}{(result.GetValue(freezeTrunk) ? ", kept as it is" : "")}");
                    }
                    return await new TrainingRun(swarm, spec, weights, name, outDir, training, trainSet, evalSet, publisher, result.GetValue(noPublish) ? 0 : result.GetValue(replicas),
                        new Frozen(result.GetValue(freezeExperts), result.GetValue(freezeTrunk)), served?.Telemetry).RunAsync(cancellationToken);
                }
            }
        });
        return command;
    }

    /// <summary>65,536 rows, or fewer so that the table holds at most 16 M floats (64 MB).</summary>
    private static int DefaultBuckets(int width) => Math.Max(1024, Math.Min(65_536, (16 << 20) / width));

    /// <summary>Where a publisher's (and a contributor's) key lives unless a flag says otherwise.</summary>
    internal static string DefaultKeyFile() => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".moemesh", "publisher.key");

    private static int[]? ParseGrid(string text)
    {
        var parts = text.Split('x', 'X');
        var sizes = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out sizes[i]) || sizes[i] is < 1 or > 4096) return null;
        return parts.Length is >= 1 and <= 8 ? sizes : null;
    }

    /// <summary>The flag that sets each of <see cref="TrainingOptions"/>' settings.</summary>
    internal static readonly Dictionary<string, string> TrainingFlags = new(StringComparer.Ordinal)
    {
        [nameof(TrainingOptions.Epochs)] = "--epochs", [nameof(TrainingOptions.Steps)] = "--steps",
        [nameof(TrainingOptions.BatchSize)] = "--batch-size", [nameof(TrainingOptions.LearningRate)] = "--lr",
        [nameof(TrainingOptions.MaxFailedStepsInARow)] = "MaxFailedStepsInARow",
    };

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }
}
