using MoEMesh.Protocol.Wire;

namespace MoEMesh.Routing.Directory;

/// <summary>
/// The experts a layer was built for: a registered type and a width (input and output, per sample,
/// float32). A host that announces another type or another interface under a uid of the layer's grid
/// serves a different function, so it is skipped as incompatible and never called.
/// </summary>
/// <param name="Type">The expert type ("ffn").</param>
/// <param name="Width">Input and output width d.</param>
public sealed record ExpertKind(string Type, int Width)
{
    /// <summary>The schema hash such an expert announces (<see cref="Protocol.Codec.SchemaHash"/>).</summary>
    public string SchemaHash { get; } = Protocol.Codec.SchemaHash.Of([Width], [Width], DType.F32);

    /// <summary>Whether an announced host serves this kind of expert.</summary>
    public bool Accepts(string type, string schemaHash) => type == Type && schemaHash == SchemaHash;

    /// <inheritdoc />
    public override string ToString() => $"{Type} of width {Width}";
}
