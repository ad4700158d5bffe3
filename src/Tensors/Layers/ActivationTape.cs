namespace MoEMesh.Tensors.Layers;

/// <summary>
/// What a training forward pass saves for its backward pass: each layer pushes the tensors it will
/// need and pops them, in reverse order, during backward. Tensors the tape owns (intermediate
/// activations) are returned to the pool when the tape is disposed.
/// </summary>
/// <remarks>
/// A tape lives for one forward + backward of one batch. Backward is stateless from the outside:
/// <see cref="LayerExtensions.Backward"/> builds a tape from the input, so any host can run backward for
/// any batch it is given, recomputing the forward once.
/// </remarks>
public sealed class ActivationTape : IDisposable
{
    private readonly Stack<Tensor> _saved = new();
    private readonly List<Tensor> _owned = [];

    /// <summary>Saves a tensor for the backward pass.</summary>
    public void Push(Tensor tensor) => _saved.Push(tensor);

    /// <summary>Takes back the most recently saved tensor.</summary>
    /// <exception cref="InvalidOperationException">Backward popped more than forward pushed.</exception>
    public Tensor Pop() => _saved.Count > 0
        ? _saved.Pop()
        : throw new InvalidOperationException("Activation tape is empty: backward was run without a matching forward on this tape.");

    /// <summary>Makes the tape responsible for disposing <paramref name="tensor"/>.</summary>
    public void Own(Tensor tensor) => _owned.Add(tensor);

    /// <summary>Number of saved tensors not popped yet.</summary>
    public int Count => _saved.Count;

    /// <summary>Disposes owned tensors.</summary>
    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
        _saved.Clear();
    }
}
