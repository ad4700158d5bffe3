using MoEMesh.Experts;
using MoEMesh.Tensors;

namespace MoEMesh.Benchmarks;

/// <summary>
/// An expert on a host that answers late, as a machine busy with other work does: every forward batch takes
/// <c>delay</c> longer, spent sleeping so it does not take this machine's cores from the other nodes.
/// </summary>
internal sealed class LateExpert(IExpert inner, TimeSpan delay) : IExpert
{
    public ExpertSchema Schema => inner.Schema;

    public IReadOnlyList<Parameter> Parameters => inner.Parameters;

    public Tensor Forward(Tensor input)
    {
        Thread.Sleep(delay);
        return inner.Forward(input);
    }

    public Tensor Backward(Tensor input, Tensor outputGradient) => inner.Backward(input, outputGradient);
}
