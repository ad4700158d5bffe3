namespace MoEMesh.Routing.Invocation;

/// <summary>How a call to an expert ended. Expected network outcomes are values, never exceptions.</summary>
public enum ExpertCallOutcome
{
    /// <summary>The expert answered.</summary>
    Ok,

    /// <summary>No answer by the deadline (or the host dropped expired work).</summary>
    Timeout,

    /// <summary>The host could not be reached.</summary>
    Unreachable,

    /// <summary>The host refused or failed the call (unknown uid, bad shape, overloaded, expert error).</summary>
    Rejected,
}

/// <summary>The outcome of one expert call, its answer when Ok, and why not otherwise.</summary>
public readonly record struct ExpertCallResult<T>(ExpertCallOutcome Outcome, T? Value, string? Error)
{
    /// <summary>Whether the expert answered.</summary>
    public bool IsOk => Outcome == ExpertCallOutcome.Ok;

    /// <summary>An answer.</summary>
    public static ExpertCallResult<T> Answer(T value) => new(ExpertCallOutcome.Ok, value, null);

    /// <summary>A failure.</summary>
    public static ExpertCallResult<T> Failed(ExpertCallOutcome outcome, string error) => new(outcome, default, error);

    /// <inheritdoc />
    public override string ToString() => IsOk ? "Ok" : $"{Outcome}: {Error}";
}
