using System.Numerics.Tensors;
using MoEMesh.Tensors;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Gating;

/// <summary>Weights of the router's auxiliary losses; zero switches one off.</summary>
/// <param name="LoadBalance">α of the load-balancing loss (Switch Transformer uses 0.01).</param>
/// <param name="ZLoss">β of the router z-loss (ST-MoE uses 0.001).</param>
/// <param name="MarginalEntropy">λ of the batch-marginal routing entropy, maximised: the batch's traffic spreads over the experts (balanced load).</param>
/// <param name="SampleEntropy">μ of the per-sample routing entropy, minimised: each sample's routing grows confident.</param>
/// <remarks>
/// MoECollab regularises with "routing entropy" but does not publish which; the two entropies pull opposite
/// ways, so both are here, each with its own weight.
/// </remarks>
public sealed record RouterLossWeights(float LoadBalance = 0.01f, float ZLoss = 0.001f, float MarginalEntropy = 0f, float SampleEntropy = 0f)
{
    /// <summary>Whether every weight is finite and not negative.</summary>
    public bool AreValid => new[] { LoadBalance, ZLoss, MarginalEntropy, SampleEntropy }.All(w => float.IsFinite(w) && w >= 0);
}

/// <summary>The auxiliary losses of one batch and their gradients with respect to the gate's per-dimension scores.</summary>
public sealed class RouterLossResult(float loadBalance, float zLoss, float marginalEntropy, float sampleEntropy, Tensor[] scoreGradients) : IDisposable
{
    /// <summary>α · Σ_d (N_d · Σ_c f_dc · P_dc) / D.</summary>
    public float LoadBalance { get; } = loadBalance;

    /// <summary>β · mean over samples of (log Σ over every grid expert of exp(logit))².</summary>
    public float ZLoss { get; } = zLoss;

    /// <summary>−λ · mean over dimensions of the entropy of the batch-mean routing distribution.</summary>
    public float MarginalEntropy { get; } = marginalEntropy;

    /// <summary>μ · mean over samples and dimensions of the entropy of each sample's routing distribution.</summary>
    public float SampleEntropy { get; } = sampleEntropy;

    /// <summary>Sum of the four.</summary>
    public float Total => LoadBalance + ZLoss + MarginalEntropy + SampleEntropy;

    /// <summary>dTotal/dscores per dimension, [samples, size].</summary>
    public IReadOnlyList<Tensor> ScoreGradients { get; } = scoreGradients;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var g in ScoreGradients) g.Dispose();
    }
}

/// <summary>
/// The router's auxiliary losses for a product-key grid, computed per dimension. An expert's logit is the
/// sum of its coordinates' scores, so its probability under a softmax over the whole grid factorises into
/// one softmax per dimension; that makes the z-loss exact over every grid slot (log Σ exp of a sum is the
/// sum of per-dimension log Σ exp) at the cost of D small softmaxes, not one over 32,768 experts.
/// Load balancing (Switch Transformer, α · N · Σ f_i · P_i) and the batch-marginal entropy act on each
/// dimension's coordinates: f_dc is the share of dispatched (sample, expert) pairs whose coordinate d is
/// c (a constant), P_dc the batch-mean probability of c. The marginal entropy is maximised (the term is
/// −λ H(P)), which spreads traffic over experts; the per-sample entropy is minimised (μ H(p_s)), which
/// makes each sample's routing confident. Since the grid's softmax factorises, a sample's entropy over the
/// whole grid is the sum of its per-dimension entropies.
/// </summary>
public static class RouterLosses
{
    /// <summary>Losses and score gradients for a batch.</summary>
    /// <param name="scores">Per dimension, [samples, size].</param>
    /// <param name="dispatched">Per sample, the coordinates of each expert it was sent to.</param>
    /// <param name="weights">Loss weights.</param>
    public static RouterLossResult Compute(IReadOnlyList<Tensor> scores, IReadOnlyList<IReadOnlyList<IReadOnlyList<int>>> dispatched, RouterLossWeights weights)
    {
        int dims = scores.Count, samples = scores[0].Rows;
        var probabilities = scores.Select(s =>
        {
            var p = Tensor.Uninitialized(s.Shape);
            Functions.SoftmaxRows(s.Span, s.RowLength, p.Span);
            return p;
        }).ToArray();
        var gradients = scores.Select(s => Tensor.Zeros(s.Shape)).ToArray();
        try
        {
            float balance = 0f, z = 0f, marginal = 0f, perSample = 0f;
            // z-loss: z_s = Σ_d logsumexp(scores_d[s]); L = β mean z²; dL/dscores_d[s, c] = β · 2 z_s / B · p_d[s, c].
            for (int s = 0; s < samples; s++)
            {
                float zs = 0f;
                for (int d = 0; d < dims; d++) zs += LogSumExp(scores[d].Row(s));
                z += weights.ZLoss * zs * zs / samples;
                for (int d = 0; d < dims; d++)
                    TensorPrimitives.MultiplyAdd(probabilities[d].Row(s), weights.ZLoss * 2f * zs / samples, gradients[d].Row(s), gradients[d].Row(s));
            }
            int pairs = dispatched.Sum(e => e.Count);
            for (int d = 0; d < dims; d++)
            {
                int size = scores[d].RowLength;
                var mean = new float[size];
                for (int s = 0; s < samples; s++) Functions.Add(mean, probabilities[d].Row(s), mean);
                for (int c = 0; c < size; c++) mean[c] /= samples;
                var share = new float[size];
                foreach (var sample in dispatched)
                    foreach (var coordinates in sample) share[coordinates[d]] += pairs == 0 ? 0f : 1f / pairs;
                // Load balance: L_d = α · size · Σ_c f_c · P_c / D; dL/dP_c = α · size · f_c / D.
                var dP = new float[size];
                for (int c = 0; c < size; c++)
                {
                    balance += weights.LoadBalance * size * share[c] * mean[c] / dims;
                    dP[c] = weights.LoadBalance * size * share[c] / dims;
                }
                // Marginal entropy: L_d = −λ H(P) / D, H = −Σ P log P; dL/dP_c = λ (log P_c + 1) / D.
                for (int c = 0; c < size; c++)
                {
                    float p = Math.Max(mean[c], 1e-12f);
                    marginal += weights.MarginalEntropy * p * MathF.Log(p) / dims;
                    dP[c] += weights.MarginalEntropy * (MathF.Log(p) + 1f) / dims;
                }
                // Per-sample entropy: L_d = μ mean_s H(p_s) / D; for a softmax dH/dscores_j = −p_j (log p_j + H).
                if (weights.SampleEntropy != 0)
                {
                    for (int s = 0; s < samples; s++)
                    {
                        var p = probabilities[d].Row(s);
                        float h = 0f;
                        foreach (float v in p) h -= v * MathF.Log(Math.Max(v, 1e-12f));
                        perSample += weights.SampleEntropy * h / (samples * dims);
                        var g = gradients[d].Row(s);
                        for (int j = 0; j < size; j++)
                            g[j] -= weights.SampleEntropy * p[j] * (MathF.Log(Math.Max(p[j], 1e-12f)) + h) / (samples * dims);
                    }
                }
                // P_c = mean_s p_s[c]: dL/dscores[s, j] = (1/B) · p_s[j] · (dP[j] − Σ_c p_s[c] dP[c]).
                for (int s = 0; s < samples; s++)
                {
                    var p = probabilities[d].Row(s);
                    float dot = 0f;
                    for (int c = 0; c < size; c++) dot += p[c] * dP[c];
                    var g = gradients[d].Row(s);
                    for (int j = 0; j < size; j++) g[j] += p[j] * (dP[j] - dot) / samples;
                }
            }
            return new RouterLossResult(balance, z, marginal, perSample, gradients);
        }
        catch
        {
            foreach (var g in gradients) g.Dispose();
            throw;
        }
        finally
        {
            foreach (var p in probabilities) p.Dispose();
        }
    }

    private static float LogSumExp(ReadOnlySpan<float> x)
    {
        float max = float.NegativeInfinity;
        foreach (var v in x) max = Math.Max(max, v);
        double sum = 0;
        foreach (var v in x) sum += Math.Exp(v - max);
        return max + (float)Math.Log(sum);
    }
}

/// <summary>How evenly a batch used the experts of its grid.</summary>
/// <param name="Load">(sample, expert) assignments per expert that received any, by uid.</param>
/// <param name="GridExperts">E: the experts of the grid, whether any host serves them or not.</param>
public sealed record Utilisation(IReadOnlyDictionary<string, int> Load, long GridExperts)
{
    /// <summary>Distinct experts that received traffic.</summary>
    public int ExpertsUsed => Load.Count;

    /// <summary>Share of the grid's experts that received traffic.</summary>
    public double ShareUsed => GridExperts == 0 ? 0 : (double)ExpertsUsed / GridExperts;

    /// <summary>Entropy (nats) of the share of assignments per expert.</summary>
    public double AssignmentEntropy => EntropyOf(Load.Values);

    /// <summary>H(load) / log(E): 1 when the load is even over the whole grid, 0 when it all goes to one expert.</summary>
    public double Evenness => GridExperts <= 1 ? 1 : AssignmentEntropy / Math.Log(GridExperts);

    /// <summary>The statistics of a batch's assignments on a grid of <paramref name="gridExperts"/> experts.</summary>
    public static Utilisation Of(IEnumerable<IEnumerable<Protocol.Addressing.ExpertUid>> assignments, long gridExperts) =>
        new(assignments.SelectMany(a => a).GroupBy(u => u.Value, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal), gridExperts);

    /// <summary>Entropy (nats) of the distribution the counts make (0 for none).</summary>
    public static double EntropyOf(IEnumerable<int> counts)
    {
        var all = counts.Where(c => c > 0).ToArray();
        double total = all.Sum();
        return total == 0 ? 0 : all.Sum(c => -(c / total) * Math.Log(c / total));
    }
}
