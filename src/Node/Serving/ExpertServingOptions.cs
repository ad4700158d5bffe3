namespace MoEMesh.Node.Serving;

/// <summary>Rules for expert requests arriving from the network.</summary>
public sealed class ExpertServingOptions
{
    /// <summary>Refuse inputs and gradients holding NaN or Inf (InvalidArgument). Default true.</summary>
    public bool RejectNonFinite { get; set; } = true;
}
