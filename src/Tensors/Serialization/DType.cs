namespace MoEMesh.Tensors.Serialization;

/// <summary>Element types tensors are stored or sent as. Compute is always float32.</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32,

    /// <summary>IEEE 754 binary16.</summary>
    F16,

    /// <summary>bfloat16: the top 16 bits of a binary32.</summary>
    BF16,
}
