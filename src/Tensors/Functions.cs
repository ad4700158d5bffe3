using System.Numerics.Tensors;

namespace MoEMesh.Tensors;

/// <summary>
/// Element-wise and row operations on spans, vectorised through <see cref="TensorPrimitives"/>.
/// Layers, losses and the gating network are built from these; nothing here allocates on the heap.
/// </summary>
public static class Functions
{
    /// <summary>√(2/π), the GELU tanh-approximation constant.</summary>
    private const float GeluScale = 0.7978845608028654f;
    private const float GeluCubic = 0.044715f;
    private const int Chunk = 1024;

    /// <summary>destination = x + y.</summary>
    public static void Add(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => TensorPrimitives.Add(x, y, destination);

    /// <summary>destination = x · factor.</summary>
    public static void Scale(ReadOnlySpan<float> x, float factor, Span<float> destination) => TensorPrimitives.Multiply(x, factor, destination);

    /// <summary>destination = eˣ.</summary>
    public static void Exp(ReadOnlySpan<float> x, Span<float> destination) => TensorPrimitives.Exp(x, destination);

    /// <summary>destination = max(x, 0).</summary>
    public static void Relu(ReadOnlySpan<float> x, Span<float> destination) => TensorPrimitives.Max(x, 0f, destination);

    /// <summary>inputGradient = outputGradient where x &gt; 0, else 0.</summary>
    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> outputGradient, Span<float> inputGradient)
    {
        RequireSameLength(x.Length, outputGradient.Length, inputGradient.Length, "ReLU backward");
        for (int i = 0; i < x.Length; i++) inputGradient[i] = x[i] > 0f ? outputGradient[i] : 0f;
    }

    /// <summary>GELU, tanh form: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> destination)
    {
        RequireSameLength(x.Length, destination.Length, destination.Length, "GELU");
        Span<float> t = stackalloc float[Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            var xs = x.Slice(start, n);
            var ts = t[..n];
            GeluTanh(xs, ts);
            TensorPrimitives.Add(ts, 1f, ts);
            TensorPrimitives.Multiply(ts, xs, ts);
            TensorPrimitives.Multiply(ts, 0.5f, destination.Slice(start, n));
        }
    }

    /// <summary>
    /// GELU backward: d/dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(…).
    /// </summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> outputGradient, Span<float> inputGradient)
    {
        RequireSameLength(x.Length, outputGradient.Length, inputGradient.Length, "GELU backward");
        Span<float> buffers = stackalloc float[2 * Chunk];
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            var xs = x.Slice(start, n);
            var t = buffers[..n];
            var u = buffers.Slice(Chunk, n);
            GeluTanh(xs, t);
            // u = 0.5·x·√(2/π)·(1 + 3a·x²)·(1 − t²)
            TensorPrimitives.Multiply(xs, xs, u);
            TensorPrimitives.Multiply(u, 3f * GeluCubic, u);
            TensorPrimitives.Add(u, 1f, u);
            TensorPrimitives.Multiply(u, xs, u);
            TensorPrimitives.Multiply(u, 0.5f * GeluScale, u);
            var oneMinusT2 = inputGradient.Slice(start, n);
            TensorPrimitives.Multiply(t, t, oneMinusT2);
            TensorPrimitives.Subtract(1f, oneMinusT2, oneMinusT2);
            TensorPrimitives.Multiply(u, oneMinusT2, u);
            // + 0.5·(1 + t)
            TensorPrimitives.Multiply(t, 0.5f, t);
            TensorPrimitives.Add(t, 0.5f, t);
            TensorPrimitives.Add(t, u, u);
            TensorPrimitives.Multiply(u, outputGradient.Slice(start, n), inputGradient.Slice(start, n));
        }
    }

    /// <summary>
    /// Softmax of each row of length <paramref name="rowLength"/>, shifted by the row maximum so large
    /// logits do not overflow (TensorPrimitives.SoftMax does not shift, and gives NaN at a logit of 1000).
    /// </summary>
    public static void SoftmaxRows(ReadOnlySpan<float> x, int rowLength, Span<float> destination)
    {
        RequireSameLength(x.Length, destination.Length, destination.Length, "softmax");
        for (int start = 0; start < x.Length; start += rowLength)
        {
            var output = destination.Slice(start, rowLength);
            TensorPrimitives.Subtract(x.Slice(start, rowLength), TensorPrimitives.Max(x.Slice(start, rowLength)), output);
            TensorPrimitives.Exp(output, output);
            TensorPrimitives.Divide(output, TensorPrimitives.Sum(output), output);
        }
    }

    /// <summary>Log-softmax of each row: x − max − log Σ exp(x − max), stable for large logits.</summary>
    public static void LogSoftmaxRows(ReadOnlySpan<float> x, int rowLength, Span<float> destination)
    {
        RequireSameLength(x.Length, destination.Length, destination.Length, "log-softmax");
        for (int start = 0; start < x.Length; start += rowLength)
        {
            var row = x.Slice(start, rowLength);
            var output = destination.Slice(start, rowLength);
            float max = TensorPrimitives.Max(row);
            TensorPrimitives.Subtract(row, max, output);
            float logSum = MathF.Log(SumOfExp(output));
            TensorPrimitives.Subtract(output, logSum, output);
        }
    }

    /// <summary>
    /// Layer normalisation of each row: (x − mean) / √(var + eps) · gamma + beta, with the biased variance
    /// as PyTorch uses.
    /// </summary>
    public static void LayerNormRows(ReadOnlySpan<float> x, int rowLength, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        float epsilon, Span<float> destination)
    {
        RequireSameLength(x.Length, destination.Length, destination.Length, "layer norm");
        for (int start = 0; start < x.Length; start += rowLength)
        {
            var output = destination.Slice(start, rowLength);
            NormalizeRow(x.Slice(start, rowLength), epsilon, output);
            TensorPrimitives.FusedMultiplyAdd(output, gamma, beta, output);
        }
    }

    /// <summary>
    /// Layer normalisation backward for each row. Recomputes the normalised input from x; accumulates
    /// into the gamma and beta gradients and writes the input gradient.
    /// </summary>
    public static void LayerNormRowsBackward(ReadOnlySpan<float> x, int rowLength, ReadOnlySpan<float> gamma, float epsilon,
        ReadOnlySpan<float> outputGradient, Span<float> inputGradient, Span<float> gammaGradient, Span<float> betaGradient)
    {
        RequireSameLength(x.Length, outputGradient.Length, inputGradient.Length, "layer norm backward");
        float[] rented = System.Buffers.ArrayPool<float>.Shared.Rent(2 * rowLength);
        try
        {
            var xhat = rented.AsSpan(0, rowLength);
            var gxhat = rented.AsSpan(rowLength, rowLength);
            for (int start = 0; start < x.Length; start += rowLength)
            {
                var g = outputGradient.Slice(start, rowLength);
                float rstd = NormalizeRow(x.Slice(start, rowLength), epsilon, xhat);
                TensorPrimitives.MultiplyAdd(g, xhat, gammaGradient, gammaGradient);
                TensorPrimitives.Add(betaGradient, g, betaGradient);
                TensorPrimitives.Multiply(g, gamma, gxhat);
                float meanG = TensorPrimitives.Sum(gxhat) / rowLength;
                float meanGx = TensorPrimitives.Dot(gxhat, xhat) / rowLength;
                // dx = rstd · (gxhat − mean(gxhat) − xhat · mean(gxhat · xhat))
                var dx = inputGradient.Slice(start, rowLength);
                TensorPrimitives.Multiply(xhat, -meanGx, dx);
                TensorPrimitives.Add(dx, gxhat, dx);
                TensorPrimitives.Add(dx, -meanG, dx);
                TensorPrimitives.Multiply(dx, rstd, dx);
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(rented);
        }
    }

    /// <summary>Σ exp(x), in chunks so no temporary escapes the stack.</summary>
    public static float SumOfExp(ReadOnlySpan<float> x)
    {
        Span<float> buffer = stackalloc float[Chunk];
        float sum = 0f;
        for (int start = 0; start < x.Length; start += Chunk)
        {
            int n = Math.Min(Chunk, x.Length - start);
            TensorPrimitives.Exp(x.Slice(start, n), buffer[..n]);
            sum += TensorPrimitives.Sum(buffer[..n]);
        }
        return sum;
    }

    /// <summary>Writes (x − mean)·rstd into destination and returns rstd = 1/√(var + eps).</summary>
    private static float NormalizeRow(ReadOnlySpan<float> x, float epsilon, Span<float> destination)
    {
        float mean = TensorPrimitives.Sum(x) / x.Length;
        TensorPrimitives.Subtract(x, mean, destination);
        float variance = TensorPrimitives.SumOfSquares(destination) / x.Length;
        float rstd = 1f / MathF.Sqrt(variance + epsilon);
        TensorPrimitives.Multiply(destination, rstd, destination);
        return rstd;
    }

    private static void GeluTanh(ReadOnlySpan<float> x, Span<float> t)
    {
        // t = tanh(√(2/π)·(x + a·x³)) = tanh(x·√(2/π)·(1 + a·x²))
        TensorPrimitives.Multiply(x, x, t);
        TensorPrimitives.Multiply(t, GeluCubic, t);
        TensorPrimitives.Add(t, 1f, t);
        TensorPrimitives.Multiply(t, x, t);
        TensorPrimitives.Multiply(t, GeluScale, t);
        TensorPrimitives.Tanh(t, t);
    }

    private static void RequireSameLength(int a, int b, int c, string operation)
    {
        if (a != b || a != c)
            throw new ArgumentException($"{operation}: spans of {a}, {b} and {c} elements should all be the same length.");
    }
}
