using MoEMesh.Routing.Calling;

namespace MoEMesh.Routing.Models;

/// <summary>
/// Measures a model on labelled texts through the swarm: accuracy, macro-F1, accuracy and macro-F1 per
/// domain, and for each layer the expert utilisation U = H(load) / log(E) (load_i the share of texts whose
/// top-ranked expert is i, E the experts of the grid, so 1 is perfectly even and 0 all on one expert), the
/// experts a text used, the specialisation I(domain; top-1 expert) / H(domain), and the texts each expert
/// got; the share of texts that fell back to a local expert; multiply-accumulates per text; and, given a
/// byte counter, bytes on the wire per text.
/// </summary>
public sealed class ModelEvaluator(MoEModel model)
{
    /// <summary>Evaluates in batches of <paramref name="batchSize"/>.</summary>
    /// <param name="examples">Texts with their labels (a label the model does not know counts as wrong).</param>
    /// <param name="batchSize">Texts per forward pass.</param>
    /// <param name="bytesOnWire">Bytes sent and received so far by the transport, or null when not counted.</param>
    /// <param name="cancellationToken">Stops the evaluation.</param>
    public async Task<EvaluationReport> EvaluateAsync(IReadOnlyList<Example> examples, int batchSize, Func<long>? bytesOnWire, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var labels = model.Spec.Head.Labels;
        long bytesBefore = bytesOnWire?.Invoke() ?? 0;
        var predictions = new SamplePrediction?[examples.Count];
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            var batch = examples.Skip(start).Take(batchSize).Select(e => e.Text).ToArray();
            try
            {
                var predicted = await model.PredictAsync(batch, cancellationToken);
                for (int i = 0; i < predicted.Count; i++) predictions[start + i] = predicted[i];
            }
            catch (ExpertCallFailedException e) when (batch.Length > 1)
            {
                // Some texts of the batch got no answer at all: only they count as failed (and wrong); the rest is asked again.
                var rest = Enumerable.Range(0, batch.Length).Except(e.UnansweredSamples).ToArray();
                try
                {
                    var predicted = await model.PredictAsync(rest.Select(i => batch[i]).ToArray(), cancellationToken);
                    for (int i = 0; i < rest.Length; i++) predictions[start + rest[i]] = predicted[i];
                }
                catch (ExpertCallFailedException)
                {
                    // Other experts failed this time (or the batch failed as a whole): each text is asked alone.
                    foreach (int i in rest) predictions[start + i] = await PredictAloneAsync(batch[i], cancellationToken);
                }
            }
            catch (ExpertCallFailedException)
            {
                // The text got no answer at all: it counts as failed and wrong.
            }
        }
        long bytes = (bytesOnWire?.Invoke() ?? 0) - bytesBefore;

        var answered = predictions.OfType<SamplePrediction>().ToArray();
        bool Correct(int i) => predictions[i] is { } p && labels[p.Label] == examples[i].Label;
        string? Predicted(int i) => predictions[i] is { } p ? labels[p.Label] : null;
        var domains = Enumerable.Range(0, examples.Count).Where(i => examples[i].Domain is not null).GroupBy(i => examples[i].Domain!, StringComparer.Ordinal)
            .OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => new DomainScore(g.Count(), (double)g.Count(Correct) / g.Count(),
                MacroF1(g.Select(i => examples[i].Label).ToArray(), g.Select(Predicted).ToArray())));
        var layers = model.Spec.Layers.Select((layer, l) =>
        {
            if (layer.IsDense) return new LayerScore(null, 0, null, new Dictionary<string, int>(), new Dictionary<string, int>());
            long experts = layer.Grid.Count;
            var top = Count(answered.Select(p => p.TopExperts[l]).OfType<string>());
            double utilisation = new Gating.Utilisation(top, experts).Evenness;
            double used = answered.Length == 0 ? 0 : answered.Average(p => p.Route.Count(h => h.Layer == l && h.Outcome is "ok" or "fallback"));
            var sent = Count(answered.SelectMany(p => p.Route.Where(h => h.Layer == l && h.Outcome is "ok" or "timeout" or "failed").Select(h => h.Expert)));
            var withDomain = Enumerable.Range(0, examples.Count)
                .Where(i => examples[i].Domain is not null && predictions[i]?.TopExperts[l] is not null)
                .Select(i => (Domain: examples[i].Domain!, Expert: predictions[i]!.TopExperts[l]!)).ToArray();
            return new LayerScore(utilisation, used, Specialisation(withDomain), top, sent);
        }).ToArray();
        return new EvaluationReport(
            examples.Count,
            examples.Count - answered.Length,
            examples.Count == 0 ? 0 : (double)Enumerable.Range(0, examples.Count).Count(Correct) / examples.Count,
            MacroF1(examples.Select(e => e.Label).ToArray(), predictions.Select(p => p is null ? null : labels[p.Label]).ToArray()),
            domains,
            layers,
            layers.Where((_, l) => !model.Spec.Layers[l].IsDense).Select(l => l.ExpertsPerSample).DefaultIfEmpty(0).Average(),
            answered.Length == 0 ? 0 : (double)answered.Count(p => p.Route.Any(h => h.Outcome == "fallback")) / answered.Length,
            answered.Length == 0 ? 0 : answered.Average(MultiplyAccumulates),
            bytesOnWire is null || examples.Count == 0 ? null : (double)bytes / examples.Count);
    }

    /// <summary>
    /// Multiply-accumulates for one text: the trunk adds one width-d row per feature, each gate scores
    /// Σ sizes (+ null experts) coordinates from d inputs, a shared expert costs two d × inner products,
    /// each routed expert used two d × 4d (ffn and mlp, at the default inner width 4d; identity costs
    /// nothing), the head d × classes.
    /// </summary>
    private double MultiplyAccumulates(SamplePrediction prediction)
    {
        long d = model.Spec.Trunk.Width;
        double macs = prediction.Features * d + d * model.Spec.Head.Labels.Count;
        for (int l = 0; l < model.Spec.Layers.Count; l++)
        {
            var layer = model.Spec.Layers[l];
            macs += (layer.IsDense ? 0 : d * (layer.Sizes.Sum() + layer.NullExperts)) + 2.0 * d * layer.SharedExpertInner;
            double perExpert = layer.ExpertType == "identity" ? 0 : 8.0 * d * d;
            macs += perExpert * prediction.Route.Count(h => h.Layer == l && h.Outcome is "ok" or "fallback");
        }
        return macs;
    }

    /// <summary>
    /// I(domain; top-1 expert) / H(domain) over the texts that have both: 1 when the expert a text is routed
    /// to first tells its domain, 0 when it tells nothing (null when there is one domain or none).
    /// </summary>
    public static double? Specialisation(IReadOnlyList<(string Domain, string Expert)> pairs)
    {
        var domainCounts = Count(pairs.Select(p => p.Domain));
        double domainEntropy = Gating.Utilisation.EntropyOf(domainCounts.Values);
        if (domainCounts.Count < 2 || domainEntropy == 0) return null;
        // I(D; X) = H(D) − H(D | X), with H(D | X) = Σ_x P(x) H(D | X = x).
        double conditional = pairs.GroupBy(p => p.Expert, StringComparer.Ordinal)
            .Sum(g => (double)g.Count() / pairs.Count * Gating.Utilisation.EntropyOf(Count(g.Select(p => p.Domain)).Values));
        return (domainEntropy - conditional) / domainEntropy;
    }

    private static IReadOnlyDictionary<string, int> Count(IEnumerable<string> values) =>
        values.GroupBy(v => v, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);

    /// <summary>Mean F1 over the labels that occur in the gold labels or the predictions (as scikit-learn's macro average); a missing prediction is wrong.</summary>
    public static double MacroF1(IReadOnlyList<string> gold, IReadOnlyList<string?> predicted)
    {
        var classes = gold.Concat(predicted.OfType<string>()).Distinct(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) return 0;
        double sum = 0;
        foreach (var c in classes)
        {
            int tp = 0, fp = 0, fn = 0;
            for (int i = 0; i < gold.Count; i++)
            {
                bool isGold = gold[i] == c, isPredicted = predicted[i] == c;
                if (isGold && isPredicted) tp++;
                else if (isPredicted) fp++;
                else if (isGold) fn++;
            }
            sum += tp == 0 ? 0 : 2.0 * tp / (2 * tp + fp + fn);
        }
        return sum / classes.Length;
    }

    private async Task<SamplePrediction?> PredictAloneAsync(string text, CancellationToken cancellationToken)
    {
        try
        {
            return (await model.PredictAsync([text], cancellationToken))[0];
        }
        catch (ExpertCallFailedException)
        {
            return null;
        }
    }
}

/// <summary>What <see cref="ModelEvaluator"/> measured.</summary>
/// <param name="Samples">Texts evaluated.</param>
/// <param name="Failed">Texts that got no answer at all (counted wrong).</param>
/// <param name="Accuracy">Share predicted right.</param>
/// <param name="MacroF1">Mean F1 over the labels.</param>
/// <param name="Domains">Accuracy per domain, when the data has a domain column.</param>
/// <param name="Layers">Utilisation and experts per text, per layer.</param>
/// <param name="ExpertsPerSample">Mean over layers of the experts a text used.</param>
/// <param name="FallbackRate">Share of answered texts that a local expert answered for in some layer.</param>
/// <param name="MacsPerSample">Multiply-accumulates per text.</param>
/// <param name="BytesPerSample">Bytes on the wire per text, when counted.</param>
public sealed record EvaluationReport(int Samples, int Failed, double Accuracy, double MacroF1, IReadOnlyDictionary<string, DomainScore> Domains, IReadOnlyList<LayerScore> Layers,
    double ExpertsPerSample, double FallbackRate, double MacsPerSample, double? BytesPerSample);

/// <summary>How the model did on one domain.</summary>
/// <param name="Samples">Texts of the domain.</param>
/// <param name="Accuracy">Share of them predicted right.</param>
/// <param name="MacroF1">Mean F1 over the labels of the domain's texts and their predictions.</param>
public sealed record DomainScore(int Samples, double Accuracy, double MacroF1);

/// <summary>One layer's routing.</summary>
/// <param name="Utilisation">U = H(load) / log(E), load the texts each expert was ranked first for, E the experts of the grid; null for a dense layer.</param>
/// <param name="ExpertsPerSample">Experts that answered for a text (remote or a local stand-in).</param>
/// <param name="Specialisation">I(domain; top-1 expert) / H(domain); null without two domains.</param>
/// <param name="TopLoad">Texts each expert was ranked first for, by uid.</param>
/// <param name="Load">Texts the gate sent to each expert (answered or not), by uid.</param>
public sealed record LayerScore(double? Utilisation, double ExpertsPerSample, double? Specialisation, IReadOnlyDictionary<string, int> TopLoad, IReadOnlyDictionary<string, int> Load);
