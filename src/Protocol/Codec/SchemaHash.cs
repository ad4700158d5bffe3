using System.Security.Cryptography;
using System.Text;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Codec;

/// <summary>
/// The identity of an expert's interface: hex SHA-256 of "in=[d0,d1];out=[d0,d1];dtype=F32" (per-sample
/// shapes). Hosts announce it; a gating node compares it with the schema its model expects before it
/// sends activations, so an expert of another shape is never called.
/// </summary>
public static class SchemaHash
{
    /// <summary>The hash of a schema.</summary>
    public static string Of(IEnumerable<int> inputShape, IEnumerable<int> outputShape, DType dtype)
    {
        var text = $"in=[{string.Join(',', inputShape)}];out=[{string.Join(',', outputShape)}];dtype={dtype}";
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..32];
    }
}
