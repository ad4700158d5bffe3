using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Calling;

/// <summary>
/// What a forward fan-out produced: the combined output, which samples fell back to local experts, the
/// experts each sample actually used with their renormalised weights, and every call for the trace. It
/// keeps each answering expert's inputs and outputs for the backward pass; dispose it afterwards.
/// </summary>
public sealed class FanOutResult : IDisposable
{
    internal FanOutResult(Tensor output, bool[] fellBack, IReadOnlyList<IReadOnlyList<UsedExpert>> used, IReadOnlyList<float> nullShare,
        IReadOnlyList<ExpertCallTrace> trace, IReadOnlyDictionary<AnswerKey, ExpertAnswer> answers)
    {
        Output = output;
        FellBack = fellBack;
        Used = used;
        NullShare = nullShare;
        Trace = trace;
        Answers = answers;
    }

    /// <summary>The combined output, [samples, ...output shape].</summary>
    public Tensor Output { get; }

    /// <summary>Per sample, whether a local expert answered for it.</summary>
    public IReadOnlyList<bool> FellBack { get; }

    /// <summary>Per sample, the experts whose answers were combined and their renormalised weights (real experts only).</summary>
    public IReadOnlyList<IReadOnlyList<UsedExpert>> Used { get; }

    /// <summary>
    /// Per sample, the renormalised weight of the null experts it chose (zero without null experts):
    /// with <see cref="Used"/>'s weights it sums to one.
    /// </summary>
    public IReadOnlyList<float> NullShare { get; }

    /// <summary>Every call, remote and local.</summary>
    public IReadOnlyList<ExpertCallTrace> Trace { get; }

    /// <summary>Experts used per sample (for reporting).</summary>
    public IEnumerable<int> ExpertsPerSample => Used.Select(u => u.Count);

    internal IReadOnlyDictionary<AnswerKey, ExpertAnswer> Answers { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        Output.Dispose();
        foreach (var a in Answers.Values) a.Dispose();
    }
}

/// <summary>An expert a sample's output was made of: remote, or the local fallback, and its renormalised weight.</summary>
public readonly record struct UsedExpert(ExpertUid Uid, bool Local, float Weight);

/// <summary>Answers are kept apart by uid and by whether a local expert gave them.</summary>
internal readonly record struct AnswerKey(ExpertUid Uid, bool Local);

/// <summary>One expert's answer: where it came from, which samples (rows) it carried, its inputs and outputs.</summary>
internal sealed record ExpertAnswer(ExpertTarget Target, bool Local, int[] Samples, Tensor Input, Tensor Output) : IDisposable
{
    public int RowOf(int sample) => Array.IndexOf(Samples, sample);

    public void Dispose()
    {
        Input.Dispose();
        Output.Dispose();
    }
}
