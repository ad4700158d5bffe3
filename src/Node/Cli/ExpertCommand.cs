using System.CommandLine;
using System.Globalization;
using MoEMesh.Experts;
using MoEMesh.Node.Contributing;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing.Models;
using MoEMesh.Settings;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;

namespace MoEMesh.Node.Cli;

/// <summary>
/// <c>moemesh expert train</c>: a contributor trains one expert on their own domain's data and writes its
/// checkpoint where a node keeps checkpoints, labelled with the domain and the contributor, so
/// <c>moemesh node --checkpoint-dir DIR --expert-uid UID</c> serves it as it is and announces both.
/// </summary>
internal static class ExpertCommand
{
    public static Command Create()
    {
        var command = new Command("expert", "Work on one expert by yourself: train it on your own domain's data");
        command.Subcommands.Add(Train());
        return command;
    }

    private static Command Train()
    {
        var data = new DataOptions();
        var uid = new Option<string>("--uid") { Description = "The uid the expert will be served as, e.g. ffn.0.3", Required = true };
        var domain = new Option<string>("--domain") { Description = "Your domain: the rows of the data whose domain column holds it (all rows when the file has no domain column)", Required = true };
        var contributor = new Option<string?>("--contributor") { Description = "Who trained it, as peers will see it [the PeerId of --key-file]" };
        var keyFile = new Option<string?>("--key-file") { Description = "Your key, whose PeerId names you when --contributor is not given [~/.moemesh/publisher.key]" };
        var type = new Option<string?>("--type") { Description = "Expert type: ffn or mlp [ffn; the model's with --model]" };
        var hiddenDim = new Option<int?>("--hidden-dim") { Description = "Expert width d [64; the model's width with --model]" };
        var innerDim = new Option<int?>("--inner-dim") { Description = "Inner width [4d]" };
        var optimizer = new Option<string>("--optimizer") { Description = "The expert's optimizer, as the node that serves it will be configured: sgd, adam or adamw [adam]", DefaultValueFactory = _ => "adam" };
        var expertLr = new Option<float>("--learning-rate") { Description = "The expert's learning rate [0.001]", DefaultValueFactory = _ => 1e-3f };
        var lr = new Option<float>("--lr") { Description = "Learning rate of the temporary head (and trunk) [0.01]", DefaultValueFactory = _ => 0.01f };
        var epochs = new Option<int?>("--epochs") { Description = "Passes over your data [3]" };
        var steps = new Option<int?>("--steps") { Description = "Steps to take instead of --epochs" };
        var batchSize = new Option<int>("--batch-size") { Description = "Texts per step [32]", DefaultValueFactory = _ => 32 };
        var evalSplit = new Option<double>("--eval-split") { Description = "Share of your data held out to measure the expert [0.1]", DefaultValueFactory = _ => 0.1 };
        var buckets = new Option<int>("--buckets") { Description = "Rows of the temporary trunk's hashed embedding (without --model) [65536]", DefaultValueFactory = _ => 65_536 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the trunk, head, split and batch order [1]", DefaultValueFactory = _ => 1UL };
        var checkpointDir = new Option<string>("--checkpoint-dir") { Description = "Where the node that will serve it keeps checkpoints [checkpoints]", DefaultValueFactory = _ => "checkpoints" };
        var model = new Option<string?>("--model") { Description = "Train against this published model's trunk (kept as it is), so the expert fits the model's first layer; needs --peer" };
        var peer = new Option<string?>("--peer") { Description = "A node's peer address, to fetch --model from" };
        var trunkFrom = new Option<string?>("--trunk-from") { Description = "Train against the trunk in this model file (kept as it is), as --model does for a published one" };
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var command = new Command("train", "Train one expert on your own domain's data, and write its checkpoint for a node to serve")
        {
            uid, domain, contributor, keyFile, type, hiddenDim, innerDim, optimizer, expertLr, lr, epochs, steps, batchSize, evalSplit, buckets, seed, checkpointDir, model, peer, trunkFrom, noTls, timeout,
        };
        data.AddTo(command);
        command.SetAction(async (result, cancellationToken) =>
        {
            if (!ExpertUid.TryParse(result.GetValue(uid)!, out var expertUid, out var uidError)) return Fail($"--uid: {uidError}");
            var origin = new ExpertOrigin(result.GetValue(domain), string.IsNullOrWhiteSpace(result.GetValue(contributor)) ? null : result.GetValue(contributor));
            var training = new TrainingOptions { Epochs = result.GetValue(epochs) ?? 3, Steps = result.GetValue(steps), BatchSize = result.GetValue(batchSize), LearningRate = result.GetValue(lr), Seed = result.GetValue(seed) };
            var checks = new (bool Bad, string Problem)[]
            {
                (!DisplayLabel.IsShowable(origin.Domain), $"--domain must be {DisplayLabel.Rule}: it is announced with the expert."),
                (origin.Contributor is not null && !DisplayLabel.IsShowable(origin.Contributor), $"--contributor must be {DisplayLabel.Rule}: it is announced with the expert."),
                (result.GetValue(type) is not (null or "ffn" or "mlp"), $"--type must be ffn or mlp (the types that learn); got '{result.GetValue(type)}'."),
                (result.GetValue(optimizer) is not ("sgd" or "adam" or "adamw"), $"--optimizer must be sgd, adam or adamw; got '{result.GetValue(optimizer)}'."),
                (!(result.GetValue(expertLr) > 0) || !float.IsFinite(result.GetValue(expertLr)), $"--learning-rate must be above 0; got {result.GetValue(expertLr)}."),
                (result.GetValue(hiddenDim) is < 1 or > 8192, $"--hidden-dim must be between 1 and 8192; got {result.GetValue(hiddenDim)}."),
                (result.GetValue(innerDim) is < 1 or > 65_536, $"--inner-dim must be between 1 and 65536; got {result.GetValue(innerDim)}."),
                (result.GetValue(epochs) is not null && result.GetValue(steps) is not null, "--epochs and --steps: give one of them, not both."),
                (!(result.GetValue(evalSplit) is >= 0 and < 1), $"--eval-split must be at least 0 and below 1; got {result.GetValue(evalSplit)}."),
                (result.GetValue(buckets) is < 1 or > 1 << 24, $"--buckets must be between 1 and {1 << 24}; got {result.GetValue(buckets)}."),
                (result.GetValue(model) is not null && result.GetValue(peer) is null, "--model needs --peer: the node to fetch the model through."),
                (result.GetValue(model) is not null && result.GetValue(trunkFrom) is not null, "--model and --trunk-from: give one of them, not both."),
            };
            if (checks.FirstOrDefault(c => c.Bad) is { Problem: not null } failed) return Fail(failed.Problem);
            if (SettingsValidation.Problems(training, "").FirstOrDefault() is { } bad) return Fail($"{TrainCommand.TrainingFlags[bad.Setting.TrimStart(':')]}: {bad.Problem}.");

            // Your rows: those of your domain where the file says.
            var columns = data.Columns(result, new DataColumns(DomainColumn: "domain"));
            if (data.Read(result, result.GetValue(data.Data)!, columns) is not { } file) return 2;
            var rows = file.Examples.Any(e => e.Domain is not null) ? file.Examples.Where(e => e.Domain == origin.Domain).ToArray() : file.Examples.ToArray();
            if (rows.Length == 0)
                return Fail($"{file.Path} has no row of domain '{origin.Domain}'; its domains are {string.Join(", ", file.Examples.Select(e => e.Domain).OfType<string>().Distinct().Order(StringComparer.Ordinal))}.");
            var (trainSet, heldOut) = result.GetValue(evalSplit) > 0 ? EvalSplit.Of(rows, result.GetValue(evalSplit), result.GetValue(seed)) : (rows, []);
            var labels = trainSet.Select(e => e.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
            if (labels.Length < 2) return Fail($"{file.Path}: domain '{origin.Domain}' has {labels.Length} label in its training rows; an expert learns from at least 2.");
            heldOut = heldOut.Where(e => Array.BinarySearch(labels, e.Label, StringComparer.Ordinal) >= 0).ToArray();

            // The trunk: the published model's, kept as it is, or one of this run's own.
            TrunkSpec trunkSpec;
            EmbeddingBag trunk;
            string expertType = result.GetValue(type) ?? "ffn";
            LoadedModelFile? published = null;
            string? source = result.GetValue(model) ?? result.GetValue(trunkFrom);
            if (result.GetValue(model) is { } modelName)
            {
                if (CommonOptions.Routing("none") is not { } routing) return 2;
                var (swarm, exit) = await SwarmClient.JoinAsync(result.GetValue(peer)!, !result.GetValue(noTls), result.GetValue(timeout), routing, null, cancellationToken);
                if (swarm is null) return exit;
                await using (swarm)
                {
                    var (fetched, fetchFailed) = await swarm.FetchModelAsync(modelName, cancellationToken);
                    if (fetched is null) return fetchFailed;
                    published = fetched.Model;
                }
            }
            else if (result.GetValue(trunkFrom) is { } trunkFile)
            {
                if (CommonOptions.TrunkFrom(trunkFile) is not { } loaded) return 2;
                published = loaded;
            }
            if (published is not null)
            {
                trunkSpec = published.Spec.Trunk;
                trunk = published.Weights.Trunk;
                if (result.GetValue(hiddenDim) is { } d && d != trunkSpec.Width)
                    return Fail($"--hidden-dim {d}: {source}'s trunk has width {trunkSpec.Width}; leave --hidden-dim out to take it.");
                if (result.GetResult(buckets) is { Implicit: false } && result.GetValue(buckets) != trunkSpec.Buckets)
                    return Fail($"--buckets {result.GetValue(buckets)}: {source}'s trunk has {trunkSpec.Buckets} buckets; leave --buckets out to take it.");
                // The expert must be one the model's first layer can route to, of the kind it calls (a dense model routes to none: only its trunk is taken).
                var first = published.Spec.Layers[0];
                if (result.GetValue(model) is not null && first.IsDense) return Fail($"--model: {source} is a dense model; it routes to no experts (--trunk-from FILE takes only its trunk).");
                if (!first.IsDense)
                {
                    if (first.ExpertType is not ("ffn" or "mlp")) return Fail($"{source} routes to {first.ExpertType} experts, which do not learn; expert train trains ffn and mlp experts.");
                    if (!first.Grid.Contains(expertUid))
                        return Fail($"--uid {expertUid} is not on {source}'s grid {first.GridName} {string.Join('x', first.Sizes)}; give one of its uids, such as {first.GridName}.{string.Join('.', first.Sizes.Select(_ => 0))}.");
                    if (result.GetValue(type) is { } given && given != first.ExpertType)
                        return Fail($"--type {given}: {source}'s first layer calls experts of type {first.ExpertType}; leave --type out to take it.");
                    expertType = first.ExpertType;
                }
                Console.WriteLine($"against {published.Name} version {published.Version}'s trunk ({trunkSpec.Buckets} x {trunkSpec.Width}), kept as it is");
            }
            else
            {
                trunkSpec = new TrunkSpec(result.GetValue(buckets), result.GetValue(hiddenDim) ?? 64);
                trunk = new EmbeddingBag(trunkSpec.Buckets, trunkSpec.Width, new SeededRandom(result.GetValue(seed)), BagMode.Mean, "trunk");
            }

            var spec = new ExpertSpec(expertType, trunkSpec.Width, result.GetValue(innerDim), ExpertSpec.SeedOf(expertUid.Value)).Canonical();
            var backend = new ExpertBackend(expertUid.Value, spec, ExpertRegistry.CreateDefault().Create(spec),
                new OptimizerOptions { Name = result.GetValue(optimizer)!, LearningRate = result.GetValue(expertLr) });
            var folder = Path.Combine(result.GetValue(checkpointDir)!, expertUid.Value);
            try
            {
                if (ExpertCheckpoint.TryRestore(backend, folder))
                {
                    if (backend.Origin is { } earlier && earlier.Domain != origin.Domain)
                        return Fail($"{folder} holds {expertUid} trained on domain '{earlier.Domain}'; give another --uid or --checkpoint-dir for domain '{origin.Domain}'.");
                    Console.WriteLine($"continuing {expertUid} from its checkpoint in {folder} (update {backend.UpdateCount})");
                }
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
            {
                return Fail($"{folder}: {e.Message} Give the flags it was trained with, or another --checkpoint-dir.");
            }
            if (origin.Contributor is null)
            {
                try
                {
                    using var key = PeerIdentity.LoadOrCreate(result.GetValue(keyFile) ?? TrainCommand.DefaultKeyFile());
                    origin = origin with { Contributor = key.PeerId.ToString() };
                }
                catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException)
                {
                    return Fail($"--key-file: {e.Message}");
                }
            }
            backend.Origin = origin;

            var trainer = new DomainExpertTrainer(backend, trunkSpec, trunk, trainTrunk: published is null, labels, training.LearningRate, result.GetValue(seed));
            Console.WriteLine($"training {expertUid} ({spec.Type}, d = {spec.HiddenDim}) on {trainSet.Count} texts of domain {origin.Domain} ({labels.Length} labels), holding out {heldOut.Count}; contributor {origin.Contributor}");
            var stopped = Loop(trainer, trainSet, training, cancellationToken);
            if (heldOut.Count > 0 && trainer.Score(heldOut) is var score)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"held-out accuracy {score.Accuracy:P1} on {heldOut.Count} texts of {origin.Domain} (chance {1.0 / labels.Length:P1}), loss {score.Loss:F3}, through a temporary head"));
            try
            {
                ExpertCheckpoint.Save(backend, folder);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"--checkpoint-dir: {folder} cannot be written: {e.Message}");
                return 1;
            }
            Console.WriteLine($"wrote {folder} (update {backend.UpdateCount}{(stopped ? ", stopped early" : "")}); serve it with: "
                + $"moemesh node --checkpoint-dir {result.GetValue(checkpointDir)} --expert-uid {expertUid} --expert-type {spec.Type} --hidden-dim {spec.HiddenDim}"
                + $"{(result.GetValue(optimizer) == "adam" ? "" : $" --optimizer {result.GetValue(optimizer)}")}"
                + $"{(spec.InnerDim is { } inner ? $", with \"InnerDim\": {inner} in its Experts group (--config)" : "")}");
            return 0;
        });
        return command;
    }

    /// <summary>Shuffled batches (seeded), one step each, with a progress line about every 2 % of the steps; true when stopped early.</summary>
    private static bool Loop(DomainExpertTrainer trainer, IReadOnlyList<Example> examples, TrainingOptions options, CancellationToken cancellationToken)
    {
        int perEpoch = options.StepsPerEpoch(examples.Count);
        long total = options.TotalSteps(examples.Count);
        var recent = new Queue<DomainStep>();
        long every = Math.Max(1, total / 50);
        long step = 0;
        foreach (var batch in options.Batches(examples.Count))
        {
            if (cancellationToken.IsCancellationRequested) return true;
            var result = trainer.Step(batch.Select(i => examples[i]).ToArray());
            recent.Enqueue(result);
            if (recent.Count > 50) recent.Dequeue();
            if (step == 0 || (step + 1) % every == 0 || step + 1 == total)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"epoch {(double)(step + 1) / perEpoch:F2}  step {step + 1}/{total}  loss {recent.Average(r => r.Loss):F3}  acc {(double)recent.Sum(r => r.Correct) / recent.Sum(r => r.Samples):P1}{(result.Applied ? "" : "  (a non-finite gradient: not applied)")}"));
            step++;
        }
        return false;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }
}
