using System.Numerics.Tensors;
using MoEMesh.Routing.Gating;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;
using MoEMesh.Tensors.Losses;
using MoEMesh.Tensors.Optimizers;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Models;

/// <summary>
/// A model whose middle lives in the swarm: a trunk (text → hashed words and bigrams → mean of their
/// embedding rows, width d), one or more mixture-of-experts layers as residual blocks (h ← h + MoE(h), or
/// h ← h + MoE(h) + Shared(h) where the layer has a shared expert), and a linear head to class logits. The
/// gating node holds the trunk, the gates, the shared experts and the head (<see cref="ModelWeights"/>) and
/// trains them; every routed expert trains on its own host from the gradients the backward pass sends it.
/// </summary>
public sealed class MoEModel
{
    private readonly IReadOnlyList<MixtureOfExperts?> _layers;

    /// <summary>The model of <paramref name="spec"/> with <paramref name="weights"/>; <paramref name="createLayer"/> wires each gate to the swarm.</summary>
    public MoEModel(ModelSpec spec, ModelWeights weights, Func<GatingNetwork, MixtureOfExpertsOptions, MixtureOfExperts> createLayer)
    {
        Spec = spec;
        Weights = weights;
        _layers = spec.Layers.Select((layer, i) => layer.IsDense ? null : createLayer(weights.Gates[i]!, layer.Options())).ToArray();
    }

    /// <summary>What the model is.</summary>
    public ModelSpec Spec { get; }

    /// <summary>Trunk, gates and head.</summary>
    public ModelWeights Weights { get; }

    /// <summary>
    /// Keep the trunk as it is (a trunk taken from another model, on whose representation contributed experts
    /// were trained): training steps the gates, shared experts and head only.
    /// </summary>
    public bool FreezeTrunk { get; init; }

    /// <summary>What the gating node trains: trunk (unless <see cref="FreezeTrunk"/>), gates, shared experts, head.</summary>
    public IReadOnlyList<Parameter> Parameters => FreezeTrunk ? Weights.Parameters.Where(p => !Weights.Trunk.Parameters.Contains(p)).ToArray() : Weights.Parameters;

    /// <summary>Predictions for a batch of texts, each with its class probabilities and its route through every layer.</summary>
    /// <exception cref="Calling.ExpertCallFailedException">Some text got no expert answer and no local expert could answer for it.</exception>
    public async Task<IReadOnlyList<SamplePrediction>> PredictAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        var features = TextFeatures.Hash(texts, Spec.Trunk);
        var (hidden, steps) = await ForwardAsync(features, null, cancellationToken);
        try
        {
            using var logits = Weights.Head.Forward(hidden[^1]);
            var predictions = new SamplePrediction[texts.Count];
            for (int s = 0; s < texts.Count; s++)
            {
                var probabilities = new float[logits.RowLength];
                Functions.SoftmaxRows(logits.Row(s), logits.RowLength, probabilities);
                predictions[s] = new SamplePrediction(
                    TensorPrimitives.IndexOfMax<float>(probabilities),
                    probabilities,
                    steps.SelectMany((step, layer) => step is null ? [] : RouteHop.Of(step, layer, s)).ToArray(),
                    steps.Select(step => step is { } routed && routed.Choices[s].Count > 0 ? routed.Choices[s][0].Uid.Value : null).ToArray(),
                    features.Offsets[s + 1] - features.Offsets[s]);
            }
            return predictions;
        }
        finally
        {
            Release(hidden, steps);
        }
    }

    /// <summary>
    /// One training step on a batch of texts and label indices: forward, softmax cross-entropy plus the router
    /// losses, backward through the network (experts step on their hosts), then <paramref name="optimizer"/>
    /// steps the trunk, gates and head.
    /// </summary>
    /// <exception cref="Calling.ExpertCallFailedException">Some text got no expert answer and no local expert could answer; nothing was stepped.</exception>
    public async Task<TrainingStep> TrainAsync(IReadOnlyList<string> texts, int[] labels, Optimizer optimizer, CancellationToken cancellationToken)
    {
        var features = TextFeatures.Hash(texts, Spec.Trunk);
        foreach (var p in Parameters) p.ZeroGradient();
        using var tape = new ActivationTape();
        var (hidden, steps) = await ForwardAsync(features, tape, cancellationToken);
        try
        {
            // Beside a shared expert a layer whose experts all failed still answers; a step so taken would train a dense model under an MoE's name.
            // (A batch whose every text chose only AdaMoE null experts is whole without an answer.)
            if (steps.OfType<MixtureStep>().FirstOrDefault(s => s.Experts.Used.All(u => u.Count == 0) && !s.Nulls.All(n => n.Count > 0)) is { } silent)
                throw new Calling.ExpertCallFailedException("No routed expert answered for any text of the batch; the step is skipped rather than trained on the shared expert alone.", silent.Experts.Trace);
            using var logits = Weights.Head.Forward(hidden[^1], tape);
            int correct = Enumerable.Range(0, labels.Length).Count(s => TensorPrimitives.IndexOfMax<float>(logits.Row(s)) == labels[s]);
            using var loss = SoftmaxCrossEntropy.Compute(logits, labels);
            using var gradient = Weights.Head.Backward(loss.Gradient, tape);
            // Residual blocks: dL/dh_i = dL/dh_{i+1} + dMoE_i/dh_i (+ dShared_i/dh_i) applied to it; the tape pops in reverse.
            for (int i = steps.Count - 1; i >= 0; i--)
            {
                using var throughShared = Weights.SharedExperts[i]?.Backward(gradient, tape);
                using var throughLayer = steps[i] is { } step ? await _layers[i]!.BackwardAsync(step, gradient, cancellationToken) : null;
                if (throughLayer is not null) Functions.Add(gradient.Span, throughLayer.Span, gradient.Span);
                if (throughShared is not null) Functions.Add(gradient.Span, throughShared.Span, gradient.Span);
            }
            if (!FreezeTrunk) Weights.Trunk.Backward(features, gradient);
            optimizer.Step();
            var routed = steps.OfType<MixtureStep>().ToArray();
            var failedBackward = routed.SelectMany(s => s.BackwardTrace).Where(t => !t.Local && t.Outcome != Protocol.Rpc.CallOutcome.Ok).ToArray();
            return new TrainingStep(loss.Value, labels.Length, correct, routed.Sum(s => s.RouterLosses?.Total ?? 0f), routed.Select(s => s.Experts.ExpertsPerSample.Average()).ToArray(),
                routed.Sum(s => s.Experts.FellBack.Count(f => f)), routed.Select(s => s.Utilisation).ToArray(), failedBackward.Length, failedBackward.FirstOrDefault()?.ToString());
        }
        finally
        {
            Release(hidden, steps);
        }
    }

    /// <summary>
    /// Trunk and MoE layers: every hidden state (h_0 … h_L; each layer's input stays alive for its backward)
    /// and each layer's step; the shared experts save what their backward needs on <paramref name="tape"/> when given.
    /// </summary>
    private async Task<(List<Tensor> Hidden, List<MixtureStep?> Steps)> ForwardAsync(SparseFeatures features, ActivationTape? tape, CancellationToken cancellationToken)
    {
        var hidden = new List<Tensor> { Weights.Trunk.Forward(features) };
        var steps = new List<MixtureStep?>();
        try
        {
            for (int i = 0; i < _layers.Count; i++)
            {
                var step = _layers[i] is { } layer ? await layer.ForwardAsync(hidden[^1], cancellationToken) : null;
                steps.Add(step);
                var next = hidden[^1].Clone();
                hidden.Add(next); // released with the others, whatever happens below
                if (step is not null) Functions.Add(next.Span, step.Output.Span, next.Span);
                if (Weights.SharedExperts[i] is { } shared)
                {
                    using var answer = shared.Forward(hidden[^2], tape);
                    Functions.Add(next.Span, answer.Span, next.Span);
                }
            }
            return (hidden, steps);
        }
        catch
        {
            Release(hidden, steps);
            throw;
        }
    }

    private static void Release(List<Tensor> hidden, List<MixtureStep?> steps)
    {
        foreach (var s in steps) s?.Dispose();
        foreach (var t in hidden) t.Dispose();
    }
}

/// <summary>What one training step measured.</summary>
/// <param name="Loss">Cross-entropy of the batch.</param>
/// <param name="Samples">Texts in the batch.</param>
/// <param name="Correct">Samples whose highest logit was their label (before the step).</param>
/// <param name="RouterLoss">Sum of the router losses of all layers.</param>
/// <param name="ExpertsPerSample">Mean experts used per sample, per layer.</param>
/// <param name="FellBack">Samples (summed over layers) answered by a local fallback.</param>
/// <param name="Utilisation">Per layer.</param>
/// <param name="BackwardFailures">Backward calls to remote experts that did not train them (refused, late, unreachable).</param>
/// <param name="BackwardProblem">The first of those, for the user (null when none failed).</param>
public sealed record TrainingStep(float Loss, int Samples, int Correct, float RouterLoss, IReadOnlyList<double> ExpertsPerSample, int FellBack, IReadOnlyList<Utilisation> Utilisation,
    int BackwardFailures = 0, string? BackwardProblem = null)
{
    /// <summary>The mean over the routed layers of <see cref="Gating.Utilisation.Evenness"/>; NaN when the model routes nothing (dense).</summary>
    public double Evenness => Utilisation.Select(u => u.Evenness).DefaultIfEmpty(double.NaN).Average();
}

/// <summary>The model's answer for one text.</summary>
/// <param name="Label">Index of the most probable class.</param>
/// <param name="Probabilities">Every class's probability, in the head's order.</param>
/// <param name="Route">The experts each layer used or tried for this text.</param>
/// <param name="TopExperts">Per layer, the real expert the gate ranked first (null when it found none).</param>
/// <param name="Features">Hashed features of the text (what the trunk averaged).</param>
public sealed record SamplePrediction(int Label, float[] Probabilities, IReadOnlyList<RouteHop> Route, IReadOnlyList<string?> TopExperts, int Features);
