using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Rpc;

/// <summary>How a call to a peer ended, as its caller acts on it. Expected network outcomes are values, never exceptions.</summary>
public enum CallOutcome
{
    /// <summary>The peer answered.</summary>
    Ok,

    /// <summary>No answer by the deadline, or the peer dropped or cut the work (its deadline, its shutdown).</summary>
    Timeout,

    /// <summary>The peer could not be reached (refused, closed, handshake failed).</summary>
    Unreachable,

    /// <summary>The peer is alive and refused or failed the call (bad request, not found, overloaded, not allowed, its error).</summary>
    Rejected,
}

/// <summary>The one mapping from response statuses to <see cref="CallOutcome"/>, shared by every caller (DHT, experts).</summary>
public static class CallOutcomes
{
    /// <summary>
    /// The outcome a status means: DeadlineExceeded and Cancelled (the peer cut the work: its deadline
    /// passed or it is shutting down) are timeouts, Unavailable is unreachable, any other error a rejection.
    /// </summary>
    public static CallOutcome Of(StatusCode status) => status switch
    {
        StatusCode.Ok => CallOutcome.Ok,
        StatusCode.DeadlineExceeded or StatusCode.Cancelled => CallOutcome.Timeout,
        StatusCode.Unavailable => CallOutcome.Unreachable,
        _ => CallOutcome.Rejected,
    };
}
