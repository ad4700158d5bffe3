using Google.Protobuf;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Codec;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Tensors;

namespace MoEMesh.Routing.Invocation;

/// <summary>
/// <see cref="IExpertInvoker"/> over the peer protocol: methods <c>expert.forward</c>,
/// <c>expert.backward</c> and <c>expert.info</c>, tensors in the payload with the chosen compression.
/// Statuses map to outcomes: DeadlineExceeded and Cancelled are timeouts, Unavailable unreachable,
/// anything else (and an answer that does not decode) a rejection.
/// </summary>
public sealed class RemoteExpertInvoker(IPeerTransport transport) : IExpertInvoker
{
    /// <summary>Method names: <see cref="InputGradientMethod"/> is a frozen backward (no step), a method of its own so a host that does not know it refuses it rather than training.</summary>
    public const string ForwardMethod = "expert.forward", BackwardMethod = "expert.backward", InputGradientMethod = "expert.input_gradient", InfoMethod = "expert.info";

    /// <inheritdoc />
    public async Task<ExpertCallResult<Tensor>> ForwardAsync(ExpertTarget target, Tensor input, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var (headers, payload) = TensorCodec.Encode([(input, compression)]);
        using (payload)
        {
            var request = new ForwardRequest { Uid = target.Uid.Value, Input = headers[0] };
            return await CallAsync(target, ForwardMethod, request, payload, deadline, ForwardResponse.Parser, r => r.Output, cancellationToken);
        }
    }

    /// <inheritdoc />
    public async Task<ExpertCallResult<Tensor>> BackwardAsync(ExpertTarget target, Tensor input, Tensor outputGradient, bool frozen, Compression compression, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var (headers, payload) = TensorCodec.Encode([(input, compression), (outputGradient, compression)]);
        using (payload)
        {
            var request = new BackwardRequest { Uid = target.Uid.Value, Input = headers[0], OutputGradient = headers[1] };
            return await CallAsync(target, frozen ? InputGradientMethod : BackwardMethod, request, payload, deadline, BackwardResponse.Parser, r => r.InputGradient, cancellationToken);
        }
    }

    /// <inheritdoc />
    public async Task<ExpertCallResult<ExpertInfo>> InfoAsync(ExpertTarget target, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        using var response = await transport.CallAsync(target.Host, PeerRequest.Create(InfoMethod, new ExpertInfoRequest { Uid = target.Uid.Value }, default, deadline), cancellationToken);
        if (!response.IsOk) return Failure<ExpertInfo>(target, response);
        try
        {
            return ExpertCallResult<ExpertInfo>.Answer(response.ParseHeader(ExpertInfo.Parser));
        }
        catch (PeerRpcException e)
        {
            return ExpertCallResult<ExpertInfo>.Failed(CallOutcome.Rejected, $"{target}: {e.Message}");
        }
    }

    private async Task<ExpertCallResult<Tensor>> CallAsync<TResponse>(ExpertTarget target, string method, IMessage request, PooledBuffer payload, DateTimeOffset deadline,
        MessageParser<TResponse> parser, Func<TResponse, TensorHeader?> tensor, CancellationToken cancellationToken)
        where TResponse : IMessage<TResponse>
    {
        using var response = await transport.CallAsync(target.Host, PeerRequest.Create(method, request, payload.Memory, deadline), cancellationToken);
        if (!response.IsOk) return Failure<Tensor>(target, response);
        try
        {
            var header = tensor(response.ParseHeader(parser)) ?? throw new InvalidDataException("the answer names no tensor");
            return ExpertCallResult<Tensor>.Answer(TensorCodec.Decode(header, response.Payload.Span));
        }
        catch (Exception e) when (e is PeerRpcException or InvalidDataException)
        {
            return ExpertCallResult<Tensor>.Failed(CallOutcome.Rejected, $"{method} of {target}: the answer does not decode: {e.Message}");
        }
    }

    private static ExpertCallResult<T> Failure<T>(ExpertTarget target, PeerResponse response)
    {
        var outcome = CallOutcomes.Of(response.Status);
        return ExpertCallResult<T>.Failed(outcome, outcome == CallOutcome.Rejected ? $"{target}: {response.Status}: {response.Message}" : response.Message);
    }
}
