using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Routing.Invocation;

/// <summary>The outcome of one expert call, its answer when Ok, and why not otherwise.</summary>
public readonly record struct ExpertCallResult<T>(CallOutcome Outcome, T? Value, string? Error)
{
    /// <summary>Whether the expert answered.</summary>
    public bool IsOk => Outcome == CallOutcome.Ok;

    /// <summary>An answer.</summary>
    public static ExpertCallResult<T> Answer(T value) => new(CallOutcome.Ok, value, null);

    /// <summary>A failure.</summary>
    public static ExpertCallResult<T> Failed(CallOutcome outcome, string error) => new(outcome, default, error);

    /// <inheritdoc />
    public override string ToString() => IsOk ? "Ok" : $"{Outcome}: {Error}";
}
