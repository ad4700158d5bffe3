namespace MoEMesh.Tensors;

/// <summary>
/// A trainable tensor with its gradient. A sparse parameter (an embedding table) records which rows
/// its gradient touches, so zeroing, clipping and optimizer steps cost in proportion to those rows
/// rather than to the whole table.
/// </summary>
public sealed class Parameter
{
    private readonly SortedSet<int>? _touchedRows;
    private Tensor? _gradient;

    /// <summary>Creates a parameter that owns <paramref name="value"/>.</summary>
    /// <param name="name">Unique within its model, dotted ("layers.0.weight"); used in checkpoints.</param>
    /// <param name="value">Initial value.</param>
    /// <param name="sparseRows">Whether gradients touch only some rows.</param>
    public Parameter(string name, Tensor value, bool sparseRows = false)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        Value = value;
        _touchedRows = sparseRows ? [] : null;
    }

    /// <summary>The parameter's name in checkpoints.</summary>
    public string Name { get; }

    /// <summary>Current value.</summary>
    public Tensor Value { get; }

    /// <summary>
    /// Accumulated gradient, same shape as <see cref="Value"/>. Allocated (as zeros) on first use, so a
    /// model that only runs forward, such as an expert that has not been trained yet, holds no gradients.
    /// </summary>
    public Tensor Gradient => _gradient ??= Tensor.Zeros(Value.Shape);

    /// <summary>Whether the gradient has been allocated (it is all zeros until then).</summary>
    public bool HasGradient => _gradient is not null;

    /// <summary>Whether this parameter's gradient is row-sparse.</summary>
    public bool IsSparse => _touchedRows is not null;

    /// <summary>For a sparse parameter, the rows with a non-zero gradient, ascending; null when dense.</summary>
    public IReadOnlyCollection<int>? TouchedRows => _touchedRows;

    /// <summary>Marks a row of a sparse parameter as carrying gradient.</summary>
    public void TouchRow(int row)
    {
        if (_touchedRows is null) throw new InvalidOperationException($"Parameter {Name} is dense; only sparse parameters track rows.");
        _touchedRows.Add(row);
    }

    /// <summary>Clears the gradient (only the touched rows of a sparse parameter).</summary>
    public void ZeroGradient()
    {
        if (_gradient is null)
        {
            _touchedRows?.Clear();
            return;
        }
        if (_touchedRows is null)
        {
            _gradient.Span.Clear();
            return;
        }
        foreach (int row in _touchedRows) _gradient.Row(row).Clear();
        _touchedRows.Clear();
    }

    /// <summary>
    /// Calls <paramref name="action"/> with (start, length) for every stretch of elements whose gradient
    /// may be non-zero: the whole tensor when dense, each touched row when sparse.
    /// </summary>
    public void ForEachGradientSlice(Action<int, int> action)
    {
        if (_touchedRows is null)
        {
            action(0, Value.Length);
            return;
        }
        int rowLength = Value.RowLength;
        foreach (int row in _touchedRows) action(row * rowLength, rowLength);
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}{Value.Shape}";
}
