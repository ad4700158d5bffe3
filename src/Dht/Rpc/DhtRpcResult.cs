namespace MoEMesh.Dht.Rpc;

/// <summary>How an RPC to one node ended. Expected network outcomes are values, never exceptions.</summary>
public enum RpcOutcome
{
    /// <summary>The node answered.</summary>
    Ok,

    /// <summary>No answer before the deadline.</summary>
    Timeout,

    /// <summary>The node could not be reached (refused, closed, handshake failed).</summary>
    Unreachable,

    /// <summary>The node answered with an error (bad request, overloaded); it is alive.</summary>
    Rejected,
}

/// <summary>The outcome of an RPC, with its answer when Ok and the reason otherwise.</summary>
public readonly record struct DhtRpcResult<T>(RpcOutcome Outcome, T? Value, string? Error)
{
    /// <summary>Whether the node answered.</summary>
    public bool IsOk => Outcome == RpcOutcome.Ok;

    /// <summary>Whether the node appears to be down (timeout or unreachable), as opposed to alive.</summary>
    public bool IsFailure => Outcome is RpcOutcome.Timeout or RpcOutcome.Unreachable;

    /// <summary>An answer.</summary>
    public static DhtRpcResult<T> Answer(T value) => new(RpcOutcome.Ok, value, null);

    /// <summary>A failure.</summary>
    public static DhtRpcResult<T> Failed(RpcOutcome outcome, string error) => new(outcome, default, error);
}
