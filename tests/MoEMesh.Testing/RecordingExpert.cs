using MoEMesh.Experts;
using MoEMesh.Tensors;

namespace MoEMesh.Testing;

/// <summary>
/// A parameter-free expert computing y = 2x (gradient 2g) that records every batch it runs: which
/// pass, how many rows, and in which order across experts (through a shared <see cref="CallLog"/>).
/// </summary>
public sealed class RecordingExpert(int dimension, string name, CallLog? log = null) : IExpert
{
    private readonly CallLog _log = log ?? new CallLog();

    /// <summary>The log this expert writes to.</summary>
    public CallLog Log => _log;

    /// <inheritdoc />
    public ExpertSchema Schema { get; } = new([dimension], [dimension]);

    /// <inheritdoc />
    public IReadOnlyList<Parameter> Parameters => [];

    /// <inheritdoc />
    public Tensor Forward(Tensor input)
    {
        _log.Add(name, "forward", input.Rows);
        return Doubled(input);
    }

    /// <inheritdoc />
    public Tensor Backward(Tensor input, Tensor outputGradient)
    {
        _log.Add(name, "backward", input.Rows);
        return Doubled(outputGradient);
    }

    private static Tensor Doubled(Tensor x)
    {
        var y = Tensor.Uninitialized(x.Shape);
        Functions.Scale(x.Span, 2f, y.Span);
        return y;
    }
}

/// <summary>Batches run by test experts, in the order they ran.</summary>
public sealed class CallLog
{
    private readonly List<(string Expert, string Pass, int Rows)> _calls = [];

    /// <summary>Appends a call.</summary>
    public void Add(string expert, string pass, int rows)
    {
        lock (_calls) _calls.Add((expert, pass, rows));
    }

    /// <summary>A snapshot of the calls so far.</summary>
    public IReadOnlyList<(string Expert, string Pass, int Rows)> Calls
    {
        get
        {
            lock (_calls) return _calls.ToArray();
        }
    }
}
