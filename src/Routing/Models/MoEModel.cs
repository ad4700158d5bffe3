using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;
using MoEMesh.Tensors.Losses;
using MoEMesh.Tensors.Optimizers;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Models;

/// <summary>
/// A model whose middle lives in the swarm: a trunk (EmbeddingBag over hashed features to width d), one or
/// more mixture-of-experts layers as residual blocks (h ← h + MoE(h)), and a linear head to class logits.
/// The gating node trains the trunk, the gates and the head; every expert trains on its own host from the
/// gradients the backward pass sends it.
/// </summary>
public sealed class MoEModel
{
    private readonly EmbeddingBag _trunk;
    private readonly Linear _head;
    private readonly IReadOnlyList<MixtureOfExperts> _layers;

    /// <summary>Creates the model; layers must take and return width <paramref name="dimension"/>.</summary>
    public MoEModel(int buckets, int dimension, int classes, IReadOnlyList<MixtureOfExperts> layers, ulong seed)
    {
        var random = new SeededRandom(seed);
        _trunk = new EmbeddingBag(buckets, dimension, random, BagMode.Mean, "trunk");
        _head = new Linear(dimension, classes, random, "head");
        _layers = layers;
        Buckets = buckets;
        Parameters = [.. _trunk.Parameters, .. layers.SelectMany(l => l.Gate.Parameters), .. _head.Parameters];
    }

    /// <summary>Embedding buckets of the trunk.</summary>
    public int Buckets { get; }

    /// <summary>What the gating node trains: trunk, gates, head.</summary>
    public IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Class logits for a batch; the caller owns them.</summary>
    public async Task<Tensor> PredictAsync(SparseFeatures features, CancellationToken cancellationToken)
    {
        var (hidden, steps) = await ForwardAsync(features, cancellationToken);
        try
        {
            return _head.Forward(hidden[^1]);
        }
        finally
        {
            Release(hidden, steps);
        }
    }

    /// <summary>
    /// One training step: forward, softmax cross-entropy plus the router losses, backward through the
    /// network (experts step on their hosts), then <paramref name="optimizer"/> steps the trunk, gates and head.
    /// </summary>
    public async Task<TrainingStep> TrainAsync(SparseFeatures features, int[] labels, Optimizer optimizer, CancellationToken cancellationToken)
    {
        foreach (var p in Parameters) p.ZeroGradient();
        var (hidden, steps) = await ForwardAsync(features, cancellationToken);
        try
        {
            using var tape = new ActivationTape();
            using var logits = _head.Forward(hidden[^1], tape);
            using var loss = SoftmaxCrossEntropy.Compute(logits, labels);
            using var gradient = _head.Backward(loss.Gradient, tape);
            // Residual blocks: dL/dh_i = dL/dh_{i+1} + dMoE_i/dh_i applied to it.
            for (int i = steps.Count - 1; i >= 0; i--)
            {
                using var throughLayer = await _layers[i].BackwardAsync(steps[i], gradient, cancellationToken);
                Functions.Add(gradient.Span, throughLayer.Span, gradient.Span);
            }
            _trunk.Backward(features, gradient);
            optimizer.Step();
            return new TrainingStep(loss.Value, steps.Sum(s => s.RouterLosses?.Total ?? 0f), steps.Select(s => s.Experts.ExpertsPerSample.Average()).ToArray(),
                steps.Sum(s => s.Experts.FellBack.Count(f => f)), steps.Select(s => s.Utilisation).ToArray());
        }
        finally
        {
            Release(hidden, steps);
        }
    }

    /// <summary>Trunk and MoE layers: every hidden state (h_0 … h_L; each layer's input stays alive for its backward) and each layer's step.</summary>
    private async Task<(List<Tensor> Hidden, List<MixtureStep> Steps)> ForwardAsync(SparseFeatures features, CancellationToken cancellationToken)
    {
        var hidden = new List<Tensor> { _trunk.Forward(features) };
        var steps = new List<MixtureStep>();
        try
        {
            foreach (var layer in _layers)
            {
                var step = await layer.ForwardAsync(hidden[^1], cancellationToken);
                steps.Add(step);
                var next = hidden[^1].Clone();
                Functions.Add(next.Span, step.Output.Span, next.Span);
                hidden.Add(next);
            }
            return (hidden, steps);
        }
        catch
        {
            Release(hidden, steps);
            throw;
        }
    }

    private static void Release(List<Tensor> hidden, List<MixtureStep> steps)
    {
        foreach (var s in steps) s.Dispose();
        foreach (var t in hidden) t.Dispose();
    }
}

/// <summary>What one training step measured.</summary>
/// <param name="Loss">Cross-entropy of the batch.</param>
/// <param name="RouterLoss">Sum of the router losses of all layers.</param>
/// <param name="ExpertsPerSample">Mean experts used per sample, per layer.</param>
/// <param name="FellBack">Samples (summed over layers) answered by a local fallback.</param>
/// <param name="Utilisation">Per layer.</param>
public sealed record TrainingStep(float Loss, float RouterLoss, IReadOnlyList<double> ExpertsPerSample, int FellBack, IReadOnlyList<Gating.Utilisation> Utilisation);
