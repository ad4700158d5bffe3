using System.Buffers;

namespace MoEMesh.Tensors;

/// <summary>
/// A dense, row-major float32 tensor. Storage is rented from <see cref="ArrayPool{T}.Shared"/> and
/// returned on <see cref="Dispose"/>, so the large activation buffers of a training step are reused
/// instead of landing on the large-object heap each time. A tensor that is never disposed is simply
/// collected; disposing is an optimisation, not an obligation.
/// </summary>
/// <remarks>
/// Views (<see cref="RowSlice"/>, <see cref="Reshape"/>) share the parent's storage and are valid only
/// while the parent is: disposing a view does nothing, disposing the parent invalidates its views.
/// Operations in this library never return their input as their output, so every returned tensor is
/// owned by the caller.
/// </remarks>
public sealed class Tensor : IDisposable
{
    private float[]? _buffer;
    private readonly int _offset;
    private readonly bool _pooled;

    private Tensor(float[] buffer, int offset, TensorShape shape, bool pooled)
    {
        _buffer = buffer;
        _offset = offset;
        _pooled = pooled;
        Shape = shape;
    }

    /// <summary>The tensor's dimensions.</summary>
    public TensorShape Shape { get; }

    /// <summary>Total number of elements.</summary>
    public int Length => Shape.Length;

    /// <summary>Size of the first (batch) dimension.</summary>
    public int Rows => Shape.Rows;

    /// <summary>Elements per row (product of every dimension after the first).</summary>
    public int RowLength => Shape.RowLength;

    /// <summary>The elements, row-major.</summary>
    public Span<float> Span => new(Buffer, _offset, Length);

    /// <summary>A new tensor of zeros with pooled storage.</summary>
    public static Tensor Zeros(TensorShape shape)
    {
        var t = Uninitialized(shape);
        t.Span.Clear();
        return t;
    }

    /// <summary>A new tensor of zeros with pooled storage.</summary>
    public static Tensor Zeros(params int[] shape) => Zeros(new TensorShape(shape));

    /// <summary>
    /// A new tensor with pooled storage whose contents are unspecified: for outputs that are about to be
    /// overwritten completely (a GEMM with beta = 0, an element-wise result).
    /// </summary>
    public static Tensor Uninitialized(TensorShape shape)
    {
        var buffer = shape.Length == 0 ? [] : ArrayPool<float>.Shared.Rent(shape.Length);
        return new Tensor(buffer, 0, shape, pooled: shape.Length != 0);
    }

    /// <summary>Wraps an existing array without copying; the tensor never returns it to a pool.</summary>
    /// <exception cref="ArgumentException">The array length does not match the shape.</exception>
    public static Tensor FromArray(float[] data, TensorShape shape)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length != shape.Length)
            throw new ArgumentException($"Array of {data.Length} elements does not fit shape {shape} ({shape.Length} elements).", nameof(data));
        return new Tensor(data, 0, shape, pooled: false);
    }

    /// <summary>A new pooled tensor holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromSpan(ReadOnlySpan<float> values, TensorShape shape)
    {
        if (values.Length != shape.Length)
            throw new ArgumentException($"{values.Length} values do not fit shape {shape} ({shape.Length} elements).", nameof(values));
        var t = Uninitialized(shape);
        values.CopyTo(t.Span);
        return t;
    }

    /// <summary>Row <paramref name="index"/> as a span over this tensor's storage.</summary>
    public Span<float> Row(int index)
    {
        if ((uint)index >= (uint)Rows)
            throw new ArgumentOutOfRangeException(nameof(index), $"Row {index} is outside a tensor of shape {Shape}.");
        return new Span<float>(Buffer, _offset + index * RowLength, RowLength);
    }

    /// <summary>Element at (<paramref name="row"/>, <paramref name="column"/>) of a tensor viewed as rows.</summary>
    public ref float this[int row, int column] => ref Row(row)[column];

    /// <summary>A view of <paramref name="count"/> rows starting at <paramref name="start"/>; no copy.</summary>
    public Tensor RowSlice(int start, int count)
    {
        if (start < 0 || count < 0 || start + count > Rows)
            throw new ArgumentOutOfRangeException(nameof(start), $"Rows [{start}, {start + count}) are outside a tensor of shape {Shape}.");
        return new Tensor(Buffer, _offset + start * RowLength, Shape.WithRows(count), pooled: false);
    }

    /// <summary>A view with another shape of the same element count; no copy.</summary>
    public Tensor Reshape(TensorShape shape)
    {
        if (shape.Length != Length)
            throw new ArgumentException($"Cannot reshape {Shape} ({Length} elements) to {shape} ({shape.Length} elements).", nameof(shape));
        return new Tensor(Buffer, _offset, shape, pooled: false);
    }

    /// <summary>A pooled copy of this tensor.</summary>
    public Tensor Clone() => FromSpan(Span, Shape);

    /// <summary>The elements copied into a new array.</summary>
    public float[] ToArray() => Span.ToArray();

    /// <summary>Throws unless this tensor has exactly <paramref name="expected"/> as its shape.</summary>
    /// <param name="expected">The required shape.</param>
    /// <param name="what">What the tensor is, for the message (for example "input of Linear(1024, 4096)").</param>
    public void RequireShape(TensorShape expected, string what)
    {
        if (Shape != expected)
            throw new ArgumentException($"{what}: expected shape {expected}, got {Shape}.");
    }

    /// <summary>Returns pooled storage to the pool. Idempotent; views never return storage.</summary>
    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = null;
        if (_pooled && buffer is not null)
            ArrayPool<float>.Shared.Return(buffer);
    }

    /// <inheritdoc />
    public override string ToString() => $"Tensor{Shape}";

    private float[] Buffer => _buffer ?? throw new ObjectDisposedException(nameof(Tensor), $"Tensor{Shape} was used after Dispose.");
}
