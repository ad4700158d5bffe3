using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Dht.Rpc;

/// <summary>The outcome of an RPC, with its answer when Ok and the reason otherwise.</summary>
public readonly record struct DhtRpcResult<T>(CallOutcome Outcome, T? Value, string? Error)
{
    /// <summary>Whether the node answered.</summary>
    public bool IsOk => Outcome == CallOutcome.Ok;

    /// <summary>Whether the node appears to be down (timeout or unreachable), as opposed to alive.</summary>
    public bool IsFailure => Outcome is CallOutcome.Timeout or CallOutcome.Unreachable;

    /// <summary>An answer.</summary>
    public static DhtRpcResult<T> Answer(T value) => new(CallOutcome.Ok, value, null);

    /// <summary>A failure.</summary>
    public static DhtRpcResult<T> Failed(CallOutcome outcome, string error) => new(outcome, default, error);
}
