using Google.Protobuf;
using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using Wire = MoEMesh.Protocol.Wire.Dht;

namespace MoEMesh.Dht.Transport;

/// <summary>
/// <see cref="IDhtRpc"/> over the peer protocol (TCP, or the in-memory network in tests). Statuses map to
/// outcomes by the protocol's one mapping (<see cref="CallOutcomes"/>); an answer that does not parse or
/// does not fit the request is a rejection.
/// </summary>
public sealed class DhtRpcClient(IPeerTransport transport) : IDhtRpc
{
    /// <inheritdoc />
    public Task<DhtRpcResult<PeerId>> PingAsync(DhtSender from, PeerEndpoint target, DateTimeOffset deadline, CancellationToken cancellationToken) =>
        CallAsync(target, PeerRequest.Create(DhtRpcHandler.PingMethod, new Wire.PingRequest { Sender = DhtWire.ToWire(from) }, default, deadline),
            r => r.ParseHeader(Wire.PingResponse.Parser),
            r => PeerId.TryParse(r.PeerId, out var peer)
                ? DhtRpcResult<PeerId>.Answer(peer)
                : DhtRpcResult<PeerId>.Failed(CallOutcome.Rejected, $"{target} answered the ping with '{r.PeerId}', which is not a PeerId"),
            cancellationToken);

    /// <inheritdoc />
    public Task<DhtRpcResult<IReadOnlyList<StoreOutcome>>> StoreAsync(DhtSender from, DhtContact target, IReadOnlyList<DhtRecord> records, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var request = new Wire.StoreRequest { Sender = DhtWire.ToWire(from) };
        request.Records.AddRange(records.Select(DhtWire.ToWire));
        // Records can outgrow the envelope's 256 KiB: the store travels as the payload.
        return CallAsync(target.Endpoint, PeerRequest.Create(DhtRpcHandler.StoreMethod, null, request.ToByteArray(), deadline),
            r => r.ParseHeader(Wire.StoreResponse.Parser),
            r => OnePerItem(target, r.Results, records.Count, DhtWire.FromWire, "store results", "records"), cancellationToken);
    }

    /// <inheritdoc />
    public Task<DhtRpcResult<IReadOnlyList<FindAnswer>>> FindAsync(DhtSender from, DhtContact target, IReadOnlyList<FindQuery> queries, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var request = new Wire.FindRequest { Sender = DhtWire.ToWire(from) };
        request.Queries.AddRange(queries.Select(DhtWire.ToWire));
        return CallAsync(target.Endpoint, PeerRequest.Create(DhtRpcHandler.FindMethod, request, default, deadline),
            r => r.ParsePayload(Wire.FindResponse.Parser),
            r => OnePerItem(target, r.Results, queries.Count, ToAnswer, "find results", "queries"), cancellationToken);
    }

    /// <summary>An answer that must hold one result per item sent; any other count is a rejection.</summary>
    private static DhtRpcResult<IReadOnlyList<T>> OnePerItem<TWire, T>(DhtContact target, IReadOnlyList<TWire> results, int sent, Func<TWire, T> convert, string resultNoun, string itemNoun) =>
        results.Count == sent
            ? DhtRpcResult<IReadOnlyList<T>>.Answer(results.Select(convert).ToArray())
            : DhtRpcResult<IReadOnlyList<T>>.Failed(CallOutcome.Rejected, $"{target} answered {results.Count} {resultNoun} for {sent} {itemNoun}");

    private static FindAnswer ToAnswer(Wire.FindResult result) => new(
        result.Nearest.Select(DhtWire.FromWire).OfType<DhtContact>().ToArray(),
        result.Records.Select(DhtWire.FromWire).ToArray(),
        result.RecordsLeftOut);

    private async Task<DhtRpcResult<T>> CallAsync<TResponse, T>(PeerEndpoint target, PeerRequest request, Func<PeerResponse, TResponse> parse,
        Func<TResponse, DhtRpcResult<T>> map, CancellationToken cancellationToken)
    {
        using var response = await transport.CallAsync(target, request, cancellationToken);
        if (!response.IsOk)
        {
            var outcome = CallOutcomes.Of(response.Status);
            return DhtRpcResult<T>.Failed(outcome, outcome == CallOutcome.Rejected ? $"{response.Status}: {response.Message}" : response.Message);
        }
        try
        {
            return map(parse(response));
        }
        catch (PeerRpcException e)
        {
            return DhtRpcResult<T>.Failed(CallOutcome.Rejected, $"{target}: {e.Message}");
        }
    }
}
