using MoEMesh.Routing.Calling;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Optimizers;
using MoEMesh.Settings;

namespace MoEMesh.Routing.Models;

/// <summary>
/// Trains a model on labelled texts: shuffled batches (seeded), one <see cref="MoEModel.TrainAsync"/> per
/// step with Adam on the trunk, gates and head, while every expert steps on its own host. A step whose
/// texts got no expert answer is skipped and counted (the swarm is volunteers: a host may vanish); too
/// many in a row end training. Stopping (the token) takes effect at the next step boundary, so what was
/// trained is whole and can be saved.
/// </summary>
public sealed class ModelTrainer(MoEModel model, TrainingOptions options, TimeProvider time, RoutingTelemetry? telemetry = null)
{
    private const int Window = 50;

    /// <summary>Trains on <paramref name="examples"/>, reporting every step.</summary>
    /// <exception cref="ArgumentException">An example's label is not one of the model's.</exception>
    /// <exception cref="TrainingFailedException">Too many steps in a row failed; what was trained up to then is kept in the model.</exception>
    public async Task<TrainingResult> TrainAsync(IReadOnlyList<Example> examples, Action<TrainingProgress>? report, CancellationToken stop)
    {
        SettingsValidation.ThrowIfInvalid(options);
        if (examples.Count == 0) throw new ArgumentException("There is nothing to train on.");
        var index = model.Spec.Head.Labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        var labels = examples.Select(e => index.TryGetValue(e.Label, out int i) ? i : throw new ArgumentException($"The label '{e.Label}' is not one of the model's.")).ToArray();
        int perEpoch = options.StepsPerEpoch(examples.Count);
        long total = options.TotalSteps(examples.Count);
        var optimizer = new Adam(model.Parameters, new LearningRateSchedule(options.LearningRate));
        var recent = new Queue<TrainingStep>();
        long started = time.GetTimestamp();
        int failed = 0, failedInARow = 0, samples = 0, backwardFailures = 0;
        string? backwardProblem = null;
        long step = 0;
        using var batches = options.Batches(examples.Count).GetEnumerator();
        for (; step < total && !stop.IsCancellationRequested && batches.MoveNext(); step++)
        {
            var batch = batches.Current;
            TrainingStep result;
            try
            {
                // Not cancelled by a stop request: a step either happens whole or not at all.
                result = await model.TrainAsync(batch.Select(i => examples[i].Text).ToArray(), batch.Select(i => labels[i]).ToArray(), optimizer, CancellationToken.None);
            }
            catch (ExpertCallFailedException e)
            {
                telemetry?.TrainingStep(null);
                failed++;
                if (++failedInARow >= options.MaxFailedStepsInARow)
                    throw new TrainingFailedException($"{failedInARow} steps in a row got no expert answer; the last: {e.Message}", Result(step + 1, true));
                continue;
            }
            telemetry?.TrainingStep(result);
            failedInARow = 0;
            samples += batch.Length;
            backwardFailures += result.BackwardFailures;
            backwardProblem ??= result.BackwardProblem;
            recent.Enqueue(result);
            if (recent.Count > Window) recent.Dequeue();
            var elapsed = time.GetElapsedTime(started);
            report?.Invoke(new TrainingProgress(step + 1, total, (double)(step + 1) / perEpoch, result, recent.Average(r => r.Loss),
                (double)recent.Sum(r => r.Correct) / recent.Sum(r => r.Samples), result.ExpertsPerSample.DefaultIfEmpty(0).Average(),
                recent.Average(r => r.Evenness),
                failed, samples / Math.Max(elapsed.TotalSeconds, 1e-9), elapsed));
        }
        return Result(step, step < total);

        TrainingResult Result(long steps, bool stopped) => new(steps, (double)steps / perEpoch, stopped, failed,
            recent.Count == 0 ? double.NaN : recent.Average(r => r.Loss), time.GetElapsedTime(started), backwardFailures, backwardProblem);
    }
}

/// <summary>Where training stands after a step.</summary>
/// <param name="Step">Steps taken (1-based).</param>
/// <param name="TotalSteps">Steps planned.</param>
/// <param name="Epoch">Passes over the data so far (fractional).</param>
/// <param name="Last">What the last step measured.</param>
/// <param name="Loss">Mean loss over the last 50 steps.</param>
/// <param name="Accuracy">Training accuracy over the last 50 steps (before each step's update).</param>
/// <param name="ExpertsPerSample">Mean over layers of the experts each text of the last step used.</param>
/// <param name="Utilisation">Over the last 50 steps, the mean of each layer's <see cref="Gating.Utilisation.Evenness"/>: H(load) / log(E) of a step's assignments over the whole grid.</param>
/// <param name="FailedSteps">Steps skipped so far because no expert answered.</param>
/// <param name="SamplesPerSecond">Texts trained per second since the start.</param>
/// <param name="Elapsed">Since the start.</param>
public sealed record TrainingProgress(long Step, long TotalSteps, double Epoch, TrainingStep Last, double Loss, double Accuracy, double ExpertsPerSample, double Utilisation, int FailedSteps,
    double SamplesPerSecond, TimeSpan Elapsed);

/// <summary>How training ended.</summary>
/// <param name="Steps">Steps taken (including skipped ones).</param>
/// <param name="Epochs">Passes over the data.</param>
/// <param name="Stopped">Whether it ended before the planned steps.</param>
/// <param name="FailedSteps">Steps skipped because no expert answered.</param>
/// <param name="FinalLoss">Mean loss over the last 50 steps.</param>
/// <param name="Elapsed">Wall time.</param>
/// <param name="BackwardFailures">Backward calls to remote experts that did not train them.</param>
/// <param name="BackwardProblem">The first of those (null when none failed).</param>
public sealed record TrainingResult(long Steps, double Epochs, bool Stopped, int FailedSteps, double FinalLoss, TimeSpan Elapsed, int BackwardFailures = 0,
    string? BackwardProblem = null);

/// <summary>Training gave up because the swarm stopped answering; <see cref="Result"/> says how far it got.</summary>
public sealed class TrainingFailedException(string message, TrainingResult result) : Exception(message)
{
    /// <summary>How far training got.</summary>
    public TrainingResult Result { get; } = result;
}
