using System.Runtime.CompilerServices;

namespace MoEMesh.Tensors;

/// <summary>
/// The dimensions of a dense tensor, outermost first. Validated once on construction (every dimension
/// positive or zero), compared by value, printed as <c>[256, 1024]</c> so shape errors read well.
/// </summary>
[CollectionBuilder(typeof(TensorShape), nameof(Create))]
public readonly struct TensorShape : IEquatable<TensorShape>
{
    private readonly int[] _dims;

    /// <summary>Creates a shape from its dimensions.</summary>
    /// <exception cref="ArgumentException">A dimension is negative or the element count overflows.</exception>
    public TensorShape(params int[] dims)
    {
        ArgumentNullException.ThrowIfNull(dims);
        long length = 1, nonZero = 1;
        foreach (int d in dims)
        {
            if (d < 0)
                throw new ArgumentException($"Tensor dimensions must be zero or positive; got {Format(dims)}.", nameof(dims));
            length *= d;
            // The product of the non-zero dimensions is bounded too: a zero in front must not let the others
            // overflow what is computed from them (row lengths).
            if (d > 0) nonZero *= d;
            if (nonZero > Array.MaxLength)
                throw new ArgumentException($"Tensor shape {Format(dims)} holds more than {Array.MaxLength} elements.", nameof(dims));
        }
        _dims = (int[])dims.Clone();
        Length = (int)length;
    }

    /// <summary>Creates a shape from a collection expression such as <c>[rows, 1024]</c>.</summary>
    public static TensorShape Create(ReadOnlySpan<int> dims) => new(dims.ToArray());

    /// <summary>Enumerates the dimensions.</summary>
    public ReadOnlySpan<int>.Enumerator GetEnumerator() => Dims.GetEnumerator();

    /// <summary>Number of dimensions.</summary>
    public int Rank => Dims.Length;

    /// <summary>Total number of elements.</summary>
    public int Length { get; }

    /// <summary>Size of dimension <paramref name="index"/>.</summary>
    public int this[int index] => Dims[index];

    /// <summary>The dimensions as a read-only span.</summary>
    public ReadOnlySpan<int> Dims => _dims ?? [];

    /// <summary>Size of the first (batch) dimension; 1 for a scalar.</summary>
    public int Rows => Rank == 0 ? 1 : Dims[0];

    /// <summary>Elements per row: the product of every dimension after the first.</summary>
    public int RowLength => Rank == 0 ? 1 : Rows == 0 ? RowLengthOf(Dims) : Length / Rows;

    /// <summary>The same shape with the first dimension replaced by <paramref name="rows"/>.</summary>
    public TensorShape WithRows(int rows)
    {
        if (Rank == 0) throw new InvalidOperationException("A scalar shape has no rows.");
        var dims = Dims.ToArray();
        dims[0] = rows;
        return new TensorShape(dims);
    }

    /// <summary>Shape without the first dimension (the per-sample shape).</summary>
    public TensorShape WithoutRows() => Rank == 0 ? this : new TensorShape(Dims[1..].ToArray());

    /// <summary>A shape of <paramref name="rows"/> rows of the given per-sample shape.</summary>
    public static TensorShape Batch(int rows, TensorShape sample) => new([rows, .. sample.Dims]);

    /// <summary>The dimensions as a new array.</summary>
    public int[] ToArray() => Dims.ToArray();

    /// <inheritdoc />
    public bool Equals(TensorShape other) => Dims.SequenceEqual(other.Dims);

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is TensorShape other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (int d in Dims) hash.Add(d);
        return hash.ToHashCode();
    }

    /// <summary>Value equality.</summary>
    public static bool operator ==(TensorShape left, TensorShape right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(TensorShape left, TensorShape right) => !left.Equals(right);

    /// <inheritdoc />
    public override string ToString() => Format(Dims);

    /// <summary>Allows <c>TensorShape s = [2, 3];</c>-style construction from an array.</summary>
    public static implicit operator TensorShape(int[] dims) => new(dims);

    private static int RowLengthOf(ReadOnlySpan<int> dims)
    {
        int n = 1;
        for (int i = 1; i < dims.Length; i++) n *= dims[i];
        return n;
    }

    private static string Format(ReadOnlySpan<int> dims) => "[" + string.Join(", ", dims.ToArray()) + "]";
}
