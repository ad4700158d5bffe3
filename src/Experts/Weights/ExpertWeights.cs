using System.Globalization;
using MoEMesh.Tensors;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Experts.Weights;

/// <summary>
/// An expert's weights alone, at one update: what hosts publish (a safetensors file of its parameters,
/// no optimizer state), what another host adopts, and what replicas average. A copy owns its tensors.
/// </summary>
public sealed class ExpertWeights : IDisposable
{
    private const string Format = "moemesh-expert-weights-v1";
    private readonly Dictionary<string, Tensor> _tensors;

    private ExpertWeights(string expert, long updates, Dictionary<string, Tensor> tensors)
    {
        Expert = expert;
        Updates = updates;
        _tensors = tensors;
    }

    /// <summary>The expert's uid.</summary>
    public string Expert { get; }

    /// <summary>The update count the weights are at.</summary>
    public long Updates { get; }

    /// <summary>The parameters by name.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors => _tensors;

    /// <summary>A copy of <paramref name="backend"/>'s weights, taken under its weights lock (never half a step).</summary>
    public static ExpertWeights Of(ExpertBackend backend)
    {
        lock (backend.WeightsLock)
            return new(backend.Name, backend.UpdateCount, backend.Expert.Parameters.ToDictionary(p => p.Name, p => p.Value.Clone(), StringComparer.Ordinal));
    }

    /// <summary>Writes the weights as safetensors, parameters in name order, so equal weights give equal bytes.</summary>
    public void Write(Stream stream) => SafeTensorsFile.Write(stream, _tensors.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => new SafeTensorEntry(t.Key, t.Value)),
        new Dictionary<string, string> { ["format"] = Format, ["expert"] = Expert, ["updates"] = Updates.ToString(CultureInfo.InvariantCulture) });

    /// <summary>
    /// Reads weights written by <see cref="Write"/> for an expert shaped as <paramref name="backend"/>: the
    /// same parameter names and shapes, every value finite, at <paramref name="updates"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes are not such weights; the message says what is wrong.</exception>
    public static ExpertWeights Read(Stream stream, ExpertBackend backend, long updates)
    {
        var shapes = backend.Expert.Parameters.ToDictionary(p => p.Name, p => p.Value.Shape, StringComparer.Ordinal);
        var content = SafeTensorsFile.Read(stream, required: shapes.Keys);
        var tensors = content.Tensors.Keys.ToArray().ToDictionary(k => k, content.Take, StringComparer.Ordinal);
        content.Dispose();
        var weights = new ExpertWeights(backend.Name, updates, tensors);
        try
        {
            if (weights.Problem(shapes) is { } problem) throw new InvalidDataException(problem);
            return weights;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    private string? Problem(Dictionary<string, TensorShape> shapes)
    {
        if (_tensors.Keys.FirstOrDefault(k => !shapes.ContainsKey(k)) is { } extra) return $"the weights hold a tensor '{extra}' that {Expert} does not have";
        foreach (var (name, tensor) in _tensors)
        {
            if (tensor.Shape != shapes[name]) return $"'{name}' has shape {tensor.Shape}; {Expert} has {shapes[name]}";
            if (NonFinite(name, tensor) is { } problem) return problem;
        }
        return null;
    }

    /// <summary>Why tensor <paramref name="name"/> cannot be weights (the first value that is not finite, and where), or null when every value is finite.</summary>
    public static string? NonFinite(string name, Tensor tensor)
    {
        var values = tensor.Span;
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return $"'{name}' holds {values[i]} at {i}: weights must be finite numbers";
        return null;
    }

    /// <summary>
    /// The average of <paramref name="copies"/> weighted by <paramref name="weights"/> (equal weights when they
    /// sum to zero), at update <paramref name="updates"/>. All copies are of one expert.
    /// </summary>
    public static ExpertWeights Average(IReadOnlyList<ExpertWeights> copies, IReadOnlyList<double> weights, long updates)
    {
        double total = weights.Sum();
        var shares = weights.Select(w => (float)(total > 0 ? w / total : 1.0 / weights.Count)).ToArray();
        var average = copies[0]._tensors.ToDictionary(t => t.Key, t => Tensor.Zeros(t.Value.Shape), StringComparer.Ordinal);
        for (int c = 0; c < copies.Count; c++)
            foreach (var (name, sum) in average)
            {
                var into = sum.Span;
                var from = copies[c]._tensors[name].Span;
                for (int i = 0; i < into.Length; i++) into[i] += shares[c] * from[i];
            }
        return new(copies[0].Expert, updates, average);
    }

    /// <summary>Whether every tensor equals <paramref name="other"/>'s within <paramref name="tolerance"/>.</summary>
    public bool Matches(ExpertWeights other, float tolerance) =>
        _tensors.Count == other._tensors.Count && _tensors.All(t => other._tensors.TryGetValue(t.Key, out var o) && t.Value.Shape == o.Shape && MaxDifference(t.Value.Span, o.Span) <= tolerance);

    private static float MaxDifference(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        float max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    /// <summary>
    /// Puts these weights into <paramref name="backend"/> (under its weights lock), which then counts
    /// <see cref="Updates"/> updates, with <paramref name="lineage"/>. With <paramref name="since"/> (the weights
    /// this expert had when it contributed to an average), the steps it took after that are kept: each weight
    /// becomes this one plus what it moved since.
    /// </summary>
    public void LoadInto(ExpertBackend backend, WeightsLineage lineage, ExpertWeights? since = null)
    {
        lock (backend.WeightsLock)
        {
            long trainedSince = since is null ? 0 : backend.UpdateCount - since.Updates;
            foreach (var p in backend.Expert.Parameters)
            {
                var into = p.Value.Span;
                var from = _tensors[p.Name].Span;
                if (since is null)
                {
                    from.CopyTo(into);
                    continue;
                }
                var before = since._tensors[p.Name].Span;
                for (int i = 0; i < into.Length; i++) into[i] = from[i] + (into[i] - before[i]);
            }
            backend.SetUpdates(Math.Max(backend.Optimizer.StepCount, Updates + Math.Max(0, trainedSince)), lineage);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in _tensors.Values) t.Dispose();
    }
}
