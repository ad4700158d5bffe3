using MoEMesh.Experts;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Codec;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.InMemory;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Routing.Tests;

/// <summary>
/// A host on the in-memory network serving real experts through the real expert methods and tensor
/// codec, without optimizer steps, so a finite-difference check of the remote path is meaningful.
/// </summary>
internal sealed class InMemoryExpertHost
{
    public InMemoryExpertHost(InMemoryNetwork network, string name, int seed, IReadOnlyDictionary<string, IExpert> experts, TimeProvider? time = null)
    {
        Identity = PeerIdentity.FromSeed(seed);
        Address = new PeerAddress(name, 7000);
        Experts = experts;
        // The server judges deadlines by the same clock as the callers (a test's manual clock).
        var router = new PeerRouter(time ?? TimeProvider.System);
        router.Map(RemoteExpertInvoker.ForwardMethod, (request, _) =>
        {
            ForwardServed.TrySetResult();
            var call = request.ParseHeader(ForwardRequest.Parser);
            Compressions.Add(call.Input.Compression);
            using var input = TensorCodec.Decode(call.Input, request.Payload.Span);
            using var output = experts[call.Uid].Forward(input);
            var (headers, payload) = TensorCodec.Encode([(output, call.Input.Compression)]);
            return ValueTask.FromResult(PeerResponse.Ok(new ForwardResponse { Output = headers[0] }, payload.Memory, payload));
        });
        router.Map(RemoteExpertInvoker.BackwardMethod, (request, _) =>
        {
            var call = request.ParseHeader(BackwardRequest.Parser);
            using var input = TensorCodec.Decode(call.Input, request.Payload.Span);
            using var gradient = TensorCodec.Decode(call.OutputGradient, request.Payload.Span);
            using var inputGradient = experts[call.Uid].Backward(input, gradient);
            var (headers, payload) = TensorCodec.Encode([(inputGradient, call.Input.Compression)]);
            return ValueTask.FromResult(PeerResponse.Ok(new BackwardResponse { InputGradient = headers[0] }, payload.Memory, payload));
        });
        network.Join(Identity.PeerId, Address, router);
    }

    /// <summary>Completes when this host has received a forward call.</summary>
    public TaskCompletionSource ForwardServed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How each forward call's input travelled.</summary>
    public System.Collections.Concurrent.ConcurrentBag<Protocol.Wire.Compression> Compressions { get; } = [];

    public PeerIdentity Identity { get; }

    public PeerAddress Address { get; }

    public IReadOnlyDictionary<string, IExpert> Experts { get; }

    public ExpertRecord Record(string schemaHash = "h") => new() { Addresses = { Address.ToString() }, Type = "mlp", SchemaHash = schemaHash };
}
