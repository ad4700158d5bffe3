namespace MoEMesh.Experts.Runtime;

/// <summary>Which pass a queued request asks for; each expert has one queue per kind.</summary>
public enum BatchKind
{
    /// <summary>Forward pass.</summary>
    Forward,

    /// <summary>Backward pass with an optimizer step.</summary>
    Backward,
}
