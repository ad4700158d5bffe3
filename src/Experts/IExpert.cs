using MoEMesh.Tensors;

namespace MoEMesh.Experts;

/// <summary>
/// A neural-network expert: a function of a batch with trainable parameters. Backward is stateless:
/// given the input and the output gradient it recomputes what it needs, so any host can run backward
/// for any batch. Not thread-safe; the batching runtime calls an expert from one thread at a time.
/// </summary>
public interface IExpert
{
    /// <summary>Per-sample input and output shapes.</summary>
    ExpertSchema Schema { get; }

    /// <summary>Trainable parameters in a stable order (empty for parameter-free experts).</summary>
    IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>Output for a batch [rows, ...input shape]; the caller owns the result.</summary>
    Tensor Forward(Tensor input);

    /// <summary>Accumulates parameter gradients for the batch and returns the input gradient.</summary>
    Tensor Backward(Tensor input, Tensor outputGradient);
}
