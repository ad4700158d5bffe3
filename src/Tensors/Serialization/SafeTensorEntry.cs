namespace MoEMesh.Tensors.Serialization;

/// <summary>A tensor to write, with its name in the file and the dtype to store it as.</summary>
/// <param name="Name">Unique name in the file.</param>
/// <param name="Tensor">The values (float32 in memory).</param>
/// <param name="DType">How the values are stored.</param>
public sealed record SafeTensorEntry(string Name, Tensor Tensor, DType DType = DType.F32);
