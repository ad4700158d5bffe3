using Google.Protobuf;
using MoEMesh.Dht.Rpc;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using Wire = MoEMesh.Protocol.Wire.Dht;

namespace MoEMesh.Dht.Transport;

/// <summary>
/// Serves the DHT RPCs on a <see cref="PeerRouter"/>: parses, checks and hands requests to an
/// <see cref="IDhtRpcHandler"/>. A store's records and a find's answer travel as the payload (they can
/// outgrow the envelope's 256 KiB); pings, find requests and store results as the header. Malformed requests get InvalidArgument naming the field; requests with
/// more items than MaxKeysPerRpc get ResourceExhausted. Invalid records inside a well-formed store are
/// answered per record (Rejected, with the reason), never by failing the call.
/// </summary>
public static class DhtRpcHandler
{
    /// <summary>Method name of ping.</summary>
    public const string PingMethod = "dht.ping";

    /// <summary>Method name of store.</summary>
    public const string StoreMethod = "dht.store";

    /// <summary>Method name of find.</summary>
    public const string FindMethod = "dht.find";

    /// <summary>Maps the three DHT methods to <paramref name="node"/>.</summary>
    public static PeerRouter MapDht(this PeerRouter router, IDhtRpcHandler node, DhtOptions options)
    {
        router.Map(PingMethod, (request, _) =>
        {
            var ping = request.ParseHeader(Wire.PingRequest.Parser);
            var peer = node.HandlePing(Sender(request, ping.Sender));
            return ValueTask.FromResult(PeerResponse.Ok(new Wire.PingResponse { PeerId = peer.ToString() }));
        });
        router.Map(StoreMethod, (request, _) =>
        {
            var store = request.ParsePayload(Wire.StoreRequest.Parser);
            Limit(request, store.Records.Count, options);
            var outcomes = node.HandleStore(Sender(request, store.Sender), store.Records.Select(DhtWire.FromWire).ToArray());
            var response = new Wire.StoreResponse();
            response.Results.AddRange(outcomes.Select(DhtWire.ToWire));
            return ValueTask.FromResult(PeerResponse.Ok(response));
        });
        router.Map(FindMethod, (request, _) =>
        {
            var find = request.ParseHeader(Wire.FindRequest.Parser);
            Limit(request, find.Queries.Count, options);
            var queries = find.Queries.Select((q, i) => Checked(request, () => DhtWire.FromWire(q, i))).ToArray();
            var answers = node.HandleFind(Sender(request, find.Sender), queries);
            var response = new Wire.FindResponse();
            foreach (var answer in answers)
            {
                var result = new Wire.FindResult { RecordsLeftOut = answer.RecordsLeftOut };
                result.Nearest.AddRange(answer.Nearest.Select(DhtWire.ToWire));
                result.Records.AddRange(answer.Records.Select(DhtWire.ToWire));
                response.Results.Add(result);
            }
            // Records can outgrow the envelope's 256 KiB: the answer travels as the payload.
            return ValueTask.FromResult(PeerResponse.Ok(payload: response.ToByteArray()));
        });
        return router;
    }

    private static DhtSender Sender(PeerRequest request, Wire.DhtSender? sender)
    {
        if (request.Caller == default(PeerId))
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{request.Method}: the caller is not authenticated");
        return Checked(request, () => DhtWire.FromWire(request.Caller, sender)) with { RemoteAddress = request.RemoteAddress };
    }

    private static void Limit(PeerRequest request, int count, DhtOptions options)
    {
        if (count > options.MaxKeysPerRpc)
            throw new PeerRpcException(StatusCode.ResourceExhausted, $"{request.Method}: {count} items exceed this node's limit of {options.MaxKeysPerRpc} per call; split the request");
    }

    private static T Checked<T>(PeerRequest request, Func<T> parse)
    {
        try
        {
            return parse();
        }
        catch (FormatException e)
        {
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{request.Method}: {e.Message}");
        }
    }
}
