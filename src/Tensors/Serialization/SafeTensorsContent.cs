namespace MoEMesh.Tensors.Serialization;

/// <summary>What a safetensors file held: tensors converted to float32, their stored dtypes, and metadata.</summary>
public sealed class SafeTensorsContent : IDisposable
{
    internal SafeTensorsContent(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, DType> storedTypes,
        IReadOnlyDictionary<string, string> metadata)
    {
        Tensors = tensors;
        StoredTypes = storedTypes;
        Metadata = metadata;
    }

    /// <summary>Tensors by name, as float32.</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>The dtype each tensor was stored as.</summary>
    public IReadOnlyDictionary<string, DType> StoredTypes { get; }

    /// <summary>The "__metadata__" string map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The tensor called <paramref name="name"/>.</summary>
    /// <exception cref="InvalidDataException">There is no such tensor.</exception>
    public Tensor Get(string name) => Tensors.TryGetValue(name, out var t)
        ? t
        : throw new InvalidDataException($"safetensors file has no tensor '{name}' (it has: {string.Join(", ", Tensors.Keys)}).");

    /// <summary>Returns every tensor's storage to the pool.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}
