using System.Numerics.Tensors;
using MoEMesh.Experts.Runtime;
using MoEMesh.Protocol.Codec;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using Tensor = MoEMesh.Tensors.Tensor;

namespace MoEMesh.Node.Serving;

/// <summary>
/// Serves <c>expert.info</c>, <c>expert.forward</c>, <c>expert.backward</c> and <c>expert.input_gradient</c>
/// through the batching runtime. Forward is open to every peer; backward (which trains the expert) only to
/// the node itself and the peers <see cref="ExpertServingOptions"/> allows, others get PermissionDenied;
/// input_gradient (a frozen backward: the input gradient only, no step) is open to every peer like
/// forward. Bad input is answered with a status naming what was wrong and the node keeps serving: an
/// unknown uid is NotFound, a wrong shape or dtype InvalidArgument with expected and got, NaN or Inf
/// InvalidArgument (switchable), more rows than the batch limit ResourceExhausted, and a node that is
/// stopping Unavailable. Shapes, dtypes and
/// rows are checked on the tensor headers, before anything is decoded. The request's deadline cancels
/// queued work; expired work never runs.
/// </summary>
internal sealed class ExpertRpcHandler(IReadOnlyDictionary<string, HostedExpert> experts, BatchingRuntime runtime, BatchingOptions batching,
    ExpertServingOptions options, TimeProvider time, NodeMetrics? metrics = null, PeerId? self = null)
{
    private volatile bool _draining;
    private int _inFlight;

    /// <summary>Calls being served.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Refuses new calls from now on (those in flight finish).</summary>
    public void Drain() => _draining = true;

    /// <summary>Maps the four methods.</summary>
    public PeerRouter Map(PeerRouter router)
    {
        router.Map(RemoteExpertInvoker.InfoMethod, (request, _) =>
        {
            var expert = Find(request.ParseHeader(ExpertInfoRequest.Parser).Uid);
            return ValueTask.FromResult(PeerResponse.Ok(expert.Info()));
        });
        router.Map(RemoteExpertInvoker.ForwardMethod, ForwardAsync);
        router.Map(RemoteExpertInvoker.BackwardMethod, (request, cancellationToken) => BackwardAsync(request, frozen: false, cancellationToken));
        router.Map(RemoteExpertInvoker.InputGradientMethod, (request, cancellationToken) => BackwardAsync(request, frozen: true, cancellationToken));
        return router;
    }

    private async ValueTask<PeerResponse> ForwardAsync(PeerRequest request, CancellationToken cancellationToken)
    {
        var call = request.ParseHeader(ForwardRequest.Parser);
        var expert = Admit(call.Uid);
        int rows = RequireShape(expert, call.Input, "input", (schema, shape) => schema.RequireInputShape(shape, expert.Uid.Value));
        var input = Decode(expert, call.Input, request.Payload, "input");
        return await ServeAsync(expert, RemoteExpertInvoker.ForwardMethod, rows, async () =>
        {
            using var output = await RunAsync(() => runtime.ForwardAsync(expert.Backend, input, cancellationToken), input);
            return Encode(output, call.Input.Compression, h => new ForwardResponse { Output = h, Version = expert.Backend.UpdateCount });
        });
    }

    private async ValueTask<PeerResponse> BackwardAsync(PeerRequest request, bool frozen, CancellationToken cancellationToken)
    {
        var call = request.ParseHeader(BackwardRequest.Parser);
        var expert = Admit(call.Uid);
        // A trainer from before expert.input_gradient asks for a frozen backward with the (deprecated) flag: still no step for it.
#pragma warning disable CS0612 // the deprecated field is read on purpose
        frozen |= call.Frozen;
#pragma warning restore CS0612
        // A frozen backward (expert.input_gradient) moves no weight: like forward, it is open to every peer.
        if (!frozen && request.Caller != self && !options.AllowsTraining(request.Caller))
            throw new PeerRpcException(StatusCode.PermissionDenied,
                $"expert {expert.Uid} takes training (expert.backward) only from the peers its host allows, and {request.Caller} is not one of them; its host can allow it (Serving:TrainingPeers, --training-peers) or open training to all (--open-training).");
        int rows = RequireShape(expert, call.Input, "input", (schema, shape) => schema.RequireInputShape(shape, expert.Uid.Value));
        RequireShape(expert, call.OutputGradient, "output gradient", (schema, shape) => schema.RequireOutputGradientShape(shape, rows, expert.Uid.Value));
        var input = Decode(expert, call.Input, request.Payload, "input");
        var gradient = Checked(() => Decode(expert, call.OutputGradient, request.Payload, "output gradient"), input);
        return await ServeAsync(expert, frozen ? RemoteExpertInvoker.InputGradientMethod : RemoteExpertInvoker.BackwardMethod, rows, async () =>
        {
            using var inputGradient = await RunAsync(() => frozen
                ? runtime.InputGradientAsync(expert.Backend, input, gradient, cancellationToken)
                : runtime.BackwardAsync(expert.Backend, input, gradient, cancellationToken), input, gradient);
            return Encode(inputGradient, call.Input.Compression, h => new BackwardResponse { InputGradient = h, Version = expert.Backend.UpdateCount });
        });
    }

    /// <summary>
    /// Runs work on the runtime and then releases <paramref name="inputs"/>, except after a cancellation:
    /// a cancelled request may sit in a batch that is running, so its tensors are left to the garbage
    /// collector rather than returned to the pool under the compute loop's feet.
    /// </summary>
    private static async Task<Tensor> RunAsync(Func<Task<Tensor>> work, params Tensor[] inputs)
    {
        Tensor result;
        try
        {
            result = await work();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            foreach (var t in inputs) t.Dispose();
            throw;
        }
        foreach (var t in inputs) t.Dispose();
        return result;
    }

    private static T Checked<T>(Func<T> check, params Tensor[] owned)
    {
        try
        {
            return check();
        }
        catch
        {
            foreach (var t in owned) t.Dispose();
            throw;
        }
    }

    private async Task<PeerResponse> ServeAsync(HostedExpert expert, string method, int rows, Func<Task<PeerResponse>> work)
    {
        long started = time.GetTimestamp();
        bool ok = false;
        Interlocked.Increment(ref _inFlight);
        expert.Load.Started();
        try
        {
            var response = await work();
            ok = true;
            return response;
        }
        finally
        {
            var elapsed = time.GetElapsedTime(started);
            expert.Load.Finished(elapsed, ok ? rows : 0);
            metrics?.ExpertCall(expert.Uid.Value, method, ok, elapsed);
            Interlocked.Decrement(ref _inFlight);
        }
    }

    private HostedExpert Admit(string uid)
    {
        var expert = Find(uid);
        if (_draining) throw new PeerRpcException(StatusCode.Unavailable, $"expert {uid}: this node is shutting down and takes no new work; try another host.");
        return expert;
    }

    private HostedExpert Find(string uid) =>
        experts.TryGetValue(uid, out var expert)
            ? expert
            : throw new PeerRpcException(StatusCode.NotFound,
                $"expert '{uid}' is not hosted on this node; it hosts {experts.Count} experts: {string.Join(", ", experts.Keys.Order().Take(10))}{(experts.Count > 10 ? ", ..." : "")}.");

    /// <summary>
    /// Checks what a tensor header declares (presence, dtype, shape, rows within the batch limit) before
    /// anything is decoded, so a request cannot make the node allocate what it will refuse; returns the rows.
    /// </summary>
    private int RequireShape(HostedExpert expert, TensorHeader? header, string what, Action<Experts.ExpertSchema, Tensors.TensorShape> check)
    {
        if (header is null) throw new PeerRpcException(StatusCode.InvalidArgument, $"{what} of expert {expert.Uid}: the request names no tensor.");
        if (header.Dtype != expert.WireDType)
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{what} of expert {expert.Uid}: expected dtype {expert.WireDType}, got {header.Dtype}.");
        try
        {
            var shape = TensorCodec.ShapeOf(header);
            check(expert.Backend.Schema, shape);
            if (shape.Rows > batching.MaxBatchRows)
                throw new PeerRpcException(StatusCode.ResourceExhausted, $"expert {expert.Uid}: {shape.Rows} rows exceed this node's batch limit of {batching.MaxBatchRows}; split the request.");
            return shape.Rows;
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException)
        {
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{what} of expert {expert.Uid}: {e.Message}");
        }
    }

    private Tensor Decode(HostedExpert expert, TensorHeader header, ReadOnlyMemory<byte> payload, string what)
    {
        Tensor tensor;
        try
        {
            tensor = TensorCodec.Decode(header, payload.Span);
        }
        catch (InvalidDataException e)
        {
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{what} of expert {expert.Uid}: {e.Message}");
        }
        if (options.RejectNonFinite && !float.IsFinite(TensorPrimitives.MaxMagnitude<float>(tensor.Span)) && tensor.Length > 0)
        {
            tensor.Dispose();
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{what} of expert {expert.Uid} contains NaN or Inf.");
        }
        return tensor;
    }

    private static PeerResponse Encode<T>(Tensor tensor, Compression compression, Func<TensorHeader, T> header) where T : Google.Protobuf.IMessage
    {
        var (headers, payload) = TensorCodec.Encode([(tensor, compression)]);
        return PeerResponse.Ok(header(headers[0]), payload.Memory, payload);
    }
}
