using System.Runtime.InteropServices;
using System.Security.Cryptography;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Cli;

/// <summary>
/// One run of <c>moemesh train</c> once its flags, data and swarm check out: train (SIGINT or SIGTERM
/// stops at the next step boundary), evaluate, save the model file with its training summary, write
/// curves.csv and eval.json, and publish to <c>replicas</c> nodes (none: save only).
/// </summary>
internal sealed class TrainingRun(SwarmClient swarm, ModelSpec spec, string name, string outDir, TrainingOptions options,
    IReadOnlyList<Example> trainSet, IReadOnlyList<Example> evalSet, PeerIdentity publisher, int replicas)
{
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var weights = ModelWeights.Initialize(spec, options.Seed);
        var model = new MoEModel(spec, weights, swarm.Layers.Create);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        // The first signal stops training at the next step boundary; a second one ends the process as usual.
        PosixSignalRegistration Register(PosixSignal signal) => PosixSignalRegistration.Create(signal, context =>
        {
            if (stop.IsCancellationRequested) return;
            context.Cancel = true;
            Console.Error.WriteLine("stopping at the next step boundary; what was trained is saved (signal again to quit at once)");
            stop.Cancel();
        });
        TrainingResult trained;
        int exit = 0;
        using (Register(PosixSignal.SIGINT))
        using (Register(PosixSignal.SIGTERM))
        using (var view = new TrainingView(Path.Combine(outDir, "curves.csv")))
        {
            long total = options.Steps ?? (long)options.Epochs * ((trainSet.Count + options.BatchSize - 1) / options.BatchSize);
            try
            {
                trained = await view.RunAsync(total, report => new ModelTrainer(model, options, TimeProvider.System).TrainAsync(trainSet, report, stop.Token));
            }
            catch (TrainingFailedException e)
            {
                Console.Error.WriteLine($"training stopped: {e.Message}");
                trained = e.Result;
                exit = 1;
            }
        }
        Console.WriteLine($"trained {trained.Steps} steps ({trained.Epochs:F2} epochs) in {trained.Elapsed.TotalSeconds:F1} s{(trained.Stopped ? ", stopped early" : "")}"
            + $"{(trained.FailedSteps > 0 ? $", {trained.FailedSteps} steps skipped because no expert answered" : "")}; final loss {trained.FinalLoss:F4}");

        Console.WriteLine($"evaluating on {evalSet.Count} texts");
        var report = await new ModelEvaluator(model).EvaluateAsync(evalSet, 64, () => swarm.Transport.Bytes, CancellationToken.None);
        EvaluationView.Print(report);
        await File.WriteAllTextAsync(Path.Combine(outDir, "eval.json"), EvaluationView.ToJson(report), CancellationToken.None);

        var summary = new TrainingSummary(trained.Steps, Math.Round(trained.Epochs, 4), trainSet.Count, trained.FinalLoss, evalSet.Count, report.Accuracy, report.MacroF1,
            Math.Round(trained.Elapsed.TotalSeconds, 3), trained.Stopped);
        var path = Path.Combine(outDir, name + ModelFile.Extension);
        long version = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        ModelFile.Save(path, name, version, spec with { Training = summary }, weights);
        Console.WriteLine($"saved {path} (version {version})");
        if (replicas == 0) return exit;

        string sha;
        await using (var file = File.OpenRead(path)) sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, CancellationToken.None));
        var publication = ModelPublications.Sign(name, version, sha, new FileInfo(path).Length, publisher);
        Console.WriteLine($"publishing {name} to {replicas} nodes (publisher {publisher.PeerId})");
        var holders = await ModelPublishing.PublishAsync(swarm, path, publication, replicas, CancellationToken.None);
        if (holders.Count == 0)
        {
            Console.Error.WriteLine($"no node took {name}; the model file is at {path}");
            return 1;
        }
        if (holders.Count < replicas) Console.WriteLine($"{holders.Count} of {replicas} replicas: the swarm has no more nodes that took it");
        Console.WriteLine($"published {name} version {version}: query it on any node, e.g. curl -s <node http>/v1/query -d '{{\"model\": \"{name}\", \"text\": \"...\"}}'");
        return exit;
    }
}
