namespace MoEMesh.Experts.Runtime;

/// <summary>Which pass a queued request asks for; each expert has one queue per kind.</summary>
public enum BatchKind
{
    /// <summary>Forward pass.</summary>
    Forward,

    /// <summary>Backward pass with an optimizer step.</summary>
    Backward,

    /// <summary>Backward pass for the input gradient only: the weights stay as they are (a frozen expert).</summary>
    InputGradient,
}
