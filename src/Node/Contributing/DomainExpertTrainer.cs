using System.Numerics.Tensors;
using MoEMesh.Experts;
using MoEMesh.Routing.Models;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Layers;
using MoEMesh.Tensors.Losses;
using MoEMesh.Tensors.Optimizers;

namespace MoEMesh.Node.Contributing;

/// <summary>
/// A contributor's expert, trained on one domain's data alone: texts → trunk → the expert → a temporary
/// head over the domain's labels. With a published model's trunk (kept as it is) the expert learns on the
/// representation that model's first layer is given, so it can be plugged into it; with a trunk of its own
/// (trained alongside) it learns on a representation only it has seen. The expert steps its own optimizer,
/// as it does on a host; trunk and head use Adam and are thrown away. With the expert kept as it is and a
/// published trunk, only the head learns: a probe of how much the expert's output tells about a domain.
/// </summary>
internal sealed class DomainExpertTrainer
{
    private readonly ExpertBackend _expert;
    private readonly TrunkSpec _trunkSpec;
    private readonly EmbeddingBag _trunk;
    private readonly bool _trainTrunk;
    private readonly bool _trainExpert;
    private readonly Linear _head;
    private readonly Adam _optimizer;
    private readonly Dictionary<string, int> _labelIndex;

    /// <param name="expert">The expert to train (its optimizer steps once per batch).</param>
    /// <param name="trunkSpec">How texts become features.</param>
    /// <param name="trunk">The trunk: a published model's, or a fresh one.</param>
    /// <param name="trainTrunk">Whether the trunk learns too (false for a published model's).</param>
    /// <param name="labels">The domain's labels, in the head's order.</param>
    /// <param name="learningRate">Adam's rate for the head (and the trunk).</param>
    /// <param name="seed">Seed of the head's initial weights.</param>
    /// <param name="trainExpert">Whether the expert learns (false: a probe, which needs a trunk kept as it is too).</param>
    public DomainExpertTrainer(ExpertBackend expert, TrunkSpec trunkSpec, EmbeddingBag trunk, bool trainTrunk, IReadOnlyList<string> labels, float learningRate, ulong seed, bool trainExpert = true)
    {
        if (!trainExpert && trainTrunk) throw new ArgumentException("A trunk cannot learn through an expert kept as it is.");
        if (trunk.Dimension != expert.Schema.InputShape[0])
            throw new ArgumentException($"The trunk's width is {trunk.Dimension}; expert {expert.Name} takes {expert.Schema.InputShape[0]}.");
        _expert = expert;
        _trunkSpec = trunkSpec;
        _trunk = trunk;
        _trainTrunk = trainTrunk;
        _trainExpert = trainExpert;
        _head = new Linear(trunk.Dimension, labels.Count, new SeededRandom(seed), "head");
        _optimizer = new Adam(trainTrunk ? [.. trunk.Parameters, .. _head.Parameters] : _head.Parameters, new LearningRateSchedule(learningRate));
        _labelIndex = labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        Labels = labels;
    }

    /// <summary>The temporary head's labels.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>
    /// One step on a batch: forward, cross-entropy, backward through the expert (which steps) and into
    /// the trunk when it learns. A batch whose gradient is not finite leaves the expert as it was.
    /// </summary>
    /// <exception cref="ArgumentException">A label is not one of the head's.</exception>
    public DomainStep Step(IReadOnlyList<Example> batch)
    {
        var features = TextFeatures.Hash(batch.Select(e => e.Text).ToArray(), _trunkSpec);
        int[] labels = batch.Select(e => _labelIndex.TryGetValue(e.Label, out int i) ? i : throw new ArgumentException($"The label '{e.Label}' is not one of the domain's.")).ToArray();
        foreach (var p in _optimizer.Parameters) p.ZeroGradient();
        using var trunkOut = _trunk.Forward(features);
        using var expertOut = _expert.Forward(trunkOut);
        using var tape = new ActivationTape();
        using var logits = _head.Forward(expertOut, tape);
        int correct = Enumerable.Range(0, labels.Length).Count(s => TensorPrimitives.IndexOfMax<float>(logits.Row(s)) == labels[s]);
        using var loss = SoftmaxCrossEntropy.Compute(logits, labels);
        using var throughHead = _head.Backward(loss.Gradient, tape);
        bool applied = true;
        try
        {
            if (_trainExpert)
            {
                using var throughExpert = _expert.Backward(trunkOut, throughHead);
                if (_trainTrunk) _trunk.Backward(features, throughExpert);
            }
        }
        catch (ArithmeticException)
        {
            applied = false;
        }
        if (applied) _optimizer.Step();
        return new DomainStep(loss.Value, batch.Count, correct, applied);
    }

    /// <summary>
    /// How trunk, expert and head do on <paramref name="examples"/>: the share labelled right (a label the head
    /// lacks counts as wrong) and the mean cross-entropy over the texts whose label the head has.
    /// </summary>
    public HeldOutScore Score(IReadOnlyList<Example> examples, int batchSize = 256)
    {
        int correct = 0, known = 0;
        double loss = 0;
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            var batch = examples.Skip(start).Take(batchSize).Where(e => _labelIndex.ContainsKey(e.Label)).ToArray();
            if (batch.Length == 0) continue;
            int[] labels = batch.Select(e => _labelIndex[e.Label]).ToArray();
            using var trunkOut = _trunk.Forward(TextFeatures.Hash(batch.Select(e => e.Text).ToArray(), _trunkSpec));
            using var expertOut = _expert.Forward(trunkOut);
            using var logits = _head.Forward(expertOut);
            correct += Enumerable.Range(0, batch.Length).Count(s => TensorPrimitives.IndexOfMax<float>(logits.Row(s)) == labels[s]);
            using var batchLoss = SoftmaxCrossEntropy.Compute(logits, labels);
            loss += (double)batchLoss.Value * batch.Length;
            known += batch.Length;
        }
        return new HeldOutScore(examples.Count == 0 ? double.NaN : (double)correct / examples.Count, known == 0 ? double.NaN : loss / known);
    }
}

/// <summary>How an expert with its head does on held-out texts.</summary>
/// <param name="Accuracy">Share labelled right.</param>
/// <param name="Loss">Mean cross-entropy over the texts whose label the head has.</param>
internal sealed record HeldOutScore(double Accuracy, double Loss);

/// <summary>What one step measured.</summary>
/// <param name="Loss">Cross-entropy of the batch.</param>
/// <param name="Samples">Texts in the batch.</param>
/// <param name="Correct">Texts labelled right (before the step).</param>
/// <param name="Applied">False when the gradient was not finite and nothing moved.</param>
internal sealed record DomainStep(float Loss, int Samples, int Correct, bool Applied);
