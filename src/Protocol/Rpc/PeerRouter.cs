using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Protocol.Rpc;

/// <summary>Handles one method. The token fires at the request's deadline or when the caller cancels.</summary>
public delegate ValueTask<PeerResponse> PeerMethodHandler(PeerRequest request, CancellationToken cancellationToken);

/// <summary>
/// Routes requests to method handlers, and is the one place where server-side rules live for every
/// transport: work whose deadline has passed is dropped before it starts, unknown methods get NotFound
/// naming what the node serves, and handler failures become statuses instead of crashing the node. Only
/// a <see cref="PeerRpcException"/>'s message reaches the caller; other failures answer a fixed message and
/// go to the log.
/// </summary>
public sealed partial class PeerRouter(TimeProvider time, ILogger<PeerRouter>? logger = null)
{
    // Concurrent: a node maps some methods (its experts') while it already serves others.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, PeerMethodHandler> _methods = new(StringComparer.Ordinal);
    private readonly ILogger _logger = logger ?? (ILogger)NullLogger.Instance;

    /// <summary>Methods served, sorted.</summary>
    public IReadOnlyList<string> Methods => _methods.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>Registers a handler.</summary>
    public PeerRouter Map(string method, PeerMethodHandler handler)
    {
        if (!_methods.TryAdd(method, handler)) throw new ArgumentException($"Method {method} is already mapped.", nameof(method));
        return this;
    }

    /// <summary>Answers one request; never throws for anything the request or handler did, only for the caller's own cancellation.</summary>
    public async ValueTask<PeerResponse> DispatchAsync(PeerRequest request, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (request.Deadline <= now)
            return PeerResponse.Error(StatusCode.DeadlineExceeded, $"{request.Method}: the deadline passed {(now - request.Deadline).TotalMilliseconds:F0} ms before the work could start; dropped.");
        if (!_methods.TryGetValue(request.Method, out var handler))
            return PeerResponse.Error(StatusCode.NotFound, $"Unknown method '{request.Method}'; this node serves: {string.Join(", ", Methods)}.");
        try
        {
            return await handler(request, cancellationToken);
        }
        catch (OperationCanceledException) when (time.GetUtcNow() >= request.Deadline)
        {
            return DeadlinePassed(request.Method);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return PeerResponse.Error(StatusCode.Cancelled, $"{request.Method}: cancelled by the caller.");
        }
        catch (PeerRpcException e)
        {
            return PeerResponse.Error(e.Status, e.Message);
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FormatException)
        {
            // What a handler meant the caller to read it throws as a PeerRpcException; anything else may
            // carry internals (paths, state), so the caller gets a fixed message and the log the details.
            LogRequestRefused(_logger, request.Method, request.Caller.ToString(), e.Message);
            return PeerResponse.Error(StatusCode.InvalidArgument, $"{request.Method}: the request is not valid; this node's log says why.");
        }
        catch (Exception e)
        {
            LogHandlerFailed(_logger, e, request.Method, request.Caller.ToString());
            return PeerResponse.Error(StatusCode.Internal, $"{request.Method} failed on this node; its log says why.");
        }
    }

    /// <summary>The answer to work its deadline stopped.</summary>
    internal static PeerResponse DeadlinePassed(string method) => PeerResponse.Error(StatusCode.DeadlineExceeded, $"{method}: the deadline passed while the work ran.");

    [LoggerMessage(EventId = 101, Level = LogLevel.Information, Message = "Method {Method}: refused a request of {PeerId}: {Problem}")]
    private static partial void LogRequestRefused(ILogger logger, string method, string peerId, string problem);

    [LoggerMessage(EventId = 100, Level = LogLevel.Error, Message = "Method {Method} failed for caller {PeerId}")]
    private static partial void LogHandlerFailed(ILogger logger, Exception exception, string method, string peerId);
}
