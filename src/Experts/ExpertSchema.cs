using MoEMesh.Tensors;
using MoEMesh.Tensors.Serialization;

namespace MoEMesh.Experts;

/// <summary>
/// What an expert takes and returns, per sample (without the batch dimension). Gating nodes check a
/// remote expert's schema before sending it activations; the schema text is what the DHT record hashes.
/// </summary>
/// <param name="InputShape">Per-sample input shape.</param>
/// <param name="OutputShape">Per-sample output shape.</param>
/// <param name="DType">Element type on the wire; compute is float32.</param>
public sealed record ExpertSchema(TensorShape InputShape, TensorShape OutputShape, DType DType = DType.F32)
{
    /// <summary>Throws an <see cref="ArgumentException"/> naming expected and actual shapes unless <paramref name="input"/> is a batch of inputs.</summary>
    public void RequireInput(Tensor input, string expert) => RequireInputShape(input.Shape, expert);

    /// <summary>Throws unless <paramref name="shape"/> is the shape of a batch of inputs (checked before anything of that shape is made).</summary>
    public void RequireInputShape(TensorShape shape, string expert) => RequireBatch(shape, InputShape, $"input of expert {expert}");

    /// <summary>Throws unless <paramref name="gradient"/> is a batch of output gradients for <paramref name="rows"/> rows.</summary>
    public void RequireOutputGradient(Tensor gradient, int rows, string expert) => RequireOutputGradientShape(gradient.Shape, rows, expert);

    /// <summary>Throws unless <paramref name="shape"/> is the shape of a batch of output gradients for <paramref name="rows"/> rows.</summary>
    public void RequireOutputGradientShape(TensorShape shape, int rows, string expert)
    {
        var expected = TensorShape.Batch(rows, OutputShape);
        if (shape != expected) throw new ArgumentException($"output gradient of expert {expert}: expected shape {expected}, got {shape}.");
    }

    /// <inheritdoc />
    public override string ToString() => $"{InputShape} -> {OutputShape} {DType}";

    private static void RequireBatch(TensorShape shape, TensorShape sample, string what)
    {
        if (shape.Rank != sample.Rank + 1 || shape.WithoutRows() != sample)
            throw new ArgumentException($"{what}: expected shape [batch, {string.Join(", ", sample.ToArray())}], got {shape}.");
        if (shape.Rows == 0) throw new ArgumentException($"{what}: the batch has no rows (shape {shape}); send at least one.");
    }
}
