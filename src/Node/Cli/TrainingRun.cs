using System.Runtime.InteropServices;
using MoEMesh.Protocol.Identity;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Cli;

/// <summary>
/// One run of <c>moemesh train</c> once its flags, data and swarm check out: train, save the model file at
/// once (so what was trained is never lost), evaluate, save it again with its evaluation and write
/// curves.csv (drawn in curves.png) and eval.json, then publish to <c>replicas</c> nodes (none: save only). The first SIGINT or
/// SIGTERM stops training at the next step boundary and skips what is left of the evaluation; a second one
/// ends the process as usual. A run whose training failed (the swarm stopped answering) saves what it
/// trained but does not publish it.
/// </summary>
internal sealed class TrainingRun(SwarmClient swarm, ModelSpec spec, ModelWeights weights, string name, string outDir, TrainingOptions options,
    IReadOnlyList<Example> trainSet, IReadOnlyList<Example> evalSet, PeerIdentity publisher, int replicas, Frozen frozen, Routing.RoutingTelemetry? telemetry = null)
{
    public async Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var model = new MoEModel(spec, weights, (gate, layer) =>
        {
            layer.FreezeExperts = frozen.Experts;
            return swarm.MixtureFactory.Create(gate, layer);
        }) { FreezeTrunk = frozen.Trunk };
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        PosixSignalRegistration Register(PosixSignal signal) => PosixSignalRegistration.Create(signal, context =>
        {
            if (stop.IsCancellationRequested) return;
            context.Cancel = true;
            Console.Error.WriteLine("stopping: what was trained is saved and published (signal again to quit at once)");
            stop.Cancel();
        });
        using var interrupt = Register(PosixSignal.SIGINT);
        using var terminate = Register(PosixSignal.SIGTERM);

        var (trained, failed) = await TrainAsync(model, stop.Token);
        Console.WriteLine($"trained {trained.Steps} steps ({trained.Epochs:F2} epochs) in {trained.Elapsed.TotalSeconds:F1} s{(trained.Stopped ? ", stopped early" : "")}"
            + $"{(trained.FailedSteps > 0 ? $", {trained.FailedSteps} steps skipped because no expert answered" : "")}; final loss {trained.FinalLoss:F4}");
        if (trained.BackwardFailures > 0)
            Console.Error.WriteLine(frozen.Experts
                ? $"{trained.BackwardFailures} backward calls to frozen experts got no input gradient, so their texts did not train what lies before the layer; the first: {trained.BackwardProblem}"
                : $"{trained.BackwardFailures} backward calls did not reach an expert's training, so those experts did not learn from them; the first: {trained.BackwardProblem}");
        var path = Path.Combine(outDir, name + ModelFile.Extension);
        long version = TimeProvider.System.GetUtcNow().ToUnixTimeMilliseconds();
        Save(path, version, Summary(trained, null));
        DrawCurves();

        EvaluationReport? report = null;
        if (evalSet.Count > 0 && !stop.IsCancellationRequested)
        {
            Console.WriteLine($"evaluating on {evalSet.Count} texts");
            try
            {
                report = await new ModelEvaluator(model).EvaluateAsync(evalSet, 64, () => swarm.Transport.Bytes, stop.Token);
                EvaluationView.Print(report);
                await File.WriteAllTextAsync(Path.Combine(outDir, "eval.json"), EvaluationView.ToJson(report), CancellationToken.None);
                Save(path, version, Summary(trained, report));
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                Console.Error.WriteLine("evaluation stopped; the model is saved without it");
            }
        }
        Console.WriteLine($"saved {path} (version {version})");
        if (failed) return 1;
        if (replicas == 0) return 0;

        var publication = ModelPublications.Sign(name, version, ModelFile.Sha256Of(path), (ulong)new FileInfo(path).Length, publisher);
        Console.WriteLine($"publishing {name} to {replicas} nodes (publisher {publisher.PeerId})");
        var holders = await ModelPublishing.PublishAsync(swarm, path, publication, replicas, CancellationToken.None);
        if (holders.Count == 0)
        {
            Console.Error.WriteLine($"no node took {name}; the model file is at {path}");
            return 1;
        }
        if (holders.Count < replicas) Console.WriteLine($"{holders.Count} of {replicas} replicas: the swarm has no more nodes that took it");
        Console.WriteLine($"published {name} version {version}: query it on any node, e.g. curl -s <node http>/v1/query -d '{{\"model\": \"{name}\", \"text\": \"...\"}}'");
        return 0;

        void Save(string file, long v, TrainingSummary summary) => ModelFile.Save(file, name, v, spec with { Training = summary }, weights);
    }

    /// <summary>Draws curves.csv as curves.png; a picture that cannot be drawn costs a warning, never the run.</summary>
    private void DrawCurves()
    {
        string curves = Path.Combine(outDir, "curves.csv"), picture = Path.Combine(outDir, "curves.png");
        try
        {
            TrainingPlot.Save(curves, picture, $"{name}: training");
            Console.WriteLine($"curves: {curves}, drawn in {picture}");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Whatever the plotting library or its native renderer throws, the run and its model go on.
            Console.Error.WriteLine($"curves: {curves} (no picture: {e.Message})");
        }
    }

    /// <summary>Trains with the progress view; a run the swarm gave up on ends failed, with what it trained.</summary>
    private async Task<(TrainingResult Result, bool Failed)> TrainAsync(MoEModel model, CancellationToken stop)
    {
        using var view = new TrainingView(Path.Combine(outDir, "curves.csv"));
        try
        {
            return (await view.RunAsync(options.TotalSteps(trainSet.Count), report => new ModelTrainer(model, options, TimeProvider.System, telemetry).TrainAsync(trainSet, report, stop)), false);
        }
        catch (TrainingFailedException e)
        {
            Console.Error.WriteLine($"training stopped: {e.Message}");
            return (e.Result, true);
        }
    }

    private TrainingSummary Summary(TrainingResult trained, EvaluationReport? report) => new(trained.Steps, Math.Round(trained.Epochs, 4), trainSet.Count, trained.FinalLoss,
        report?.Samples ?? 0, report?.Accuracy ?? double.NaN, report?.MacroF1 ?? double.NaN, Math.Round(trained.Elapsed.TotalSeconds, 3), trained.Stopped);
}

/// <summary>What a training run keeps as it is.</summary>
/// <param name="Experts">The swarm's experts (they give input gradients and take no step).</param>
/// <param name="Trunk">The trunk (one taken from another model).</param>
internal sealed record Frozen(bool Experts, bool Trunk);
