namespace MoEMesh.Tensors.Serialization;

/// <summary>What a safetensors file held: tensors converted to float32, their stored dtypes, and metadata.</summary>
public sealed class SafeTensorsContent : IDisposable
{
    private readonly Dictionary<string, Tensor> _tensors;

    internal SafeTensorsContent(Dictionary<string, Tensor> tensors, IReadOnlyDictionary<string, DType> storedTypes,
        IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, TensorShape>? skipped = null, IReadOnlySet<string>? filled = null)
    {
        Filled = filled ?? new HashSet<string>();
        _tensors = tensors;
        StoredTypes = storedTypes;
        Metadata = metadata;
        Skipped = skipped ?? new Dictionary<string, TensorShape>();
    }

    /// <summary>The tensors read into tensors the caller gave (see <see cref="SafeTensorsFile.Read"/>).</summary>
    public IReadOnlySet<string> Filled { get; }

    /// <summary>The shapes of the tensors the file holds that the reader was told not to keep.</summary>
    public IReadOnlyDictionary<string, TensorShape> Skipped { get; }

    /// <summary>Tensors by name, as float32 (those not taken).</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors => _tensors;

    /// <summary>The dtype each tensor was stored as.</summary>
    public IReadOnlyDictionary<string, DType> StoredTypes { get; }

    /// <summary>The "__metadata__" string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="InvalidDataException">There is no such tensor.</exception>
    public Tensor Get(string name) => Tensors.TryGetValue(name, out var t)
        ? t
        : throw new InvalidDataException($"safetensors file has no tensor '{name}' (it has: {string.Join(", ", Tensors.Keys)}).");

    /// <summary>Takes the tensor called <paramref name="name"/> out of the content: the caller owns it, and <see cref="Dispose"/> leaves it be.</summary>
    /// <exception cref="InvalidDataException">There is no such tensor.</exception>
    public Tensor Take(string name)
    {
        var tensor = Get(name);
        _tensors.Remove(name);
        return tensor;
    }

    /// <summary>Returns the storage of every tensor not taken to the pool.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
