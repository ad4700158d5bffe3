using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Routing.Calling;

/// <summary>An expert chosen for a sample, with its gate weight (a probability).</summary>
public readonly record struct ExpertChoice(ExpertUid Uid, float Weight);

/// <summary>A forward fan-out: the batch, each sample's chosen experts, where they are hosted, and the local fallback.</summary>
public sealed class FanOutRequest
{
    /// <summary>The batch, [samples, ...input shape].</summary>
    public required Tensor Input { get; init; }

    /// <summary>Per sample, the chosen experts and their gate weights.</summary>
    public required IReadOnlyList<IReadOnlyList<ExpertChoice>> Choices { get; init; }

    /// <summary>
    /// When the calls must be done (the forward's one deadline, set when finding the experts already used
    /// part of it); null for now + ForwardTimeout.
    /// </summary>
    public DateTimeOffset? Deadline { get; init; }

    /// <summary>Live hosts of each chosen uid (from the directory); a uid with none cannot be called remotely.</summary>
    public required IReadOnlyDictionary<ExpertUid, IReadOnlyList<ExpertHostInfo>> Hosts { get; init; }

    /// <summary>
    /// The local expert that answers for a sample that got fewer than KMin answers (the same uid when it
    /// is hosted locally, else the best-scoring local expert), or null when this node has none.
    /// </summary>
    public Func<int, ExpertUid?>? Fallback { get; init; }

    /// <summary>
    /// Per sample, the gate weight that went to null experts (AdaMoE): they answer nothing, at once, and
    /// take part in the renormalisation, so a sample's output is Σ w_e y_e / (Σ w_answered + null share). A
    /// sample that chose only null experts needs no call and gets zeros (the layer's output shape must then
    /// be its input's). Null when the gate has no null experts.
    /// </summary>
    public IReadOnlyList<float>? NullShare { get; init; }

    /// <summary>
    /// Fresh hosts of a uid, asked at most once per call when every known host was unreachable: the
    /// known ones may come from a cache older than a host's restart. Null to use <see cref="Hosts"/> only.
    /// </summary>
    public Func<ExpertUid, CancellationToken, Task<IReadOnlyList<ExpertHostInfo>>>? Rediscover { get; init; }

    /// <summary>
    /// Whether a sample no expert answered for gets zeros instead of failing the call: the layer has a
    /// shared expert beside it that answers for every sample. Default false.
    /// </summary>
    public bool AllowUnanswered { get; init; }
}

/// <summary>One expert call of a fan-out, for the trace.</summary>
/// <param name="Uid">The expert.</param>
/// <param name="Host">Its host (PeerId), or "local".</param>
/// <param name="Outcome">How it ended.</param>
/// <param name="Error">Why, when it failed.</param>
/// <param name="Elapsed">From the start of the call to its end.</param>
/// <param name="Rows">Samples it carried.</param>
/// <param name="Local">Whether it was a local fallback.</param>
/// <param name="Hedged">Whether the request also went to a second host (the answer is from whichever came first).</param>
public sealed record ExpertCallTrace(ExpertUid Uid, string Host, CallOutcome Outcome, string? Error, TimeSpan Elapsed, int Rows, bool Local, bool Hedged = false)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Uid} at {Host}{(Hedged ? " (hedged)" : "")}: {Outcome}{(Error is null ? "" : $" ({Error})")} after {Elapsed.TotalMilliseconds:F0} ms, {Rows} rows{(Local ? ", local fallback" : "")}";
}

/// <summary>Some samples got no answer and have no local fallback; the message lists every call.</summary>
public sealed class ExpertCallFailedException(string message, IReadOnlyList<ExpertCallTrace> trace, IReadOnlyList<int>? unansweredSamples = null) : Exception(message)
{
    /// <summary>Every call of the fan-out.</summary>
    public IReadOnlyList<ExpertCallTrace> Trace { get; } = trace;

    /// <summary>The batch's rows that got no answer (empty when the batch failed as a whole).</summary>
    public IReadOnlyList<int> UnansweredSamples { get; } = unansweredSamples ?? [];
}
