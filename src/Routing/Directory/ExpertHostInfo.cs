using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Routing.Directory;

/// <summary>One host of an expert as its signed DHT record describes it.</summary>
/// <param name="Uid">The expert.</param>
/// <param name="Host">The hosting node (the record's signer).</param>
/// <param name="Addresses">Where the host serves the peer protocol.</param>
/// <param name="Type">The expert type ("ffn").</param>
/// <param name="SchemaHash">The expert's interface (<see cref="Protocol.Codec.SchemaHash"/>).</param>
/// <param name="Load">Queue depth and recent latency when announced.</param>
/// <param name="Version">Optimizer steps applied when announced.</param>
/// <param name="Expiration">When the announcement lapses unless renewed.</param>
/// <param name="Domain">The domain a contributed expert was trained on, as its host announces it; null when not said.</param>
/// <param name="Contributor">Who trained it, as its host announces it; null when not said.</param>
/// <param name="AnnouncedAt">When the host signed the announcement, by its own clock; null when it does not say.</param>
/// <param name="WeightsSha256">The published snapshot the host says its weights are (it has not trained since); null when it names none.</param>
public sealed record ExpertHostInfo(ExpertUid Uid, PeerId Host, IReadOnlyList<PeerAddress> Addresses, string Type, string SchemaHash,
    ExpertLoad Load, long Version, DateTimeOffset Expiration, string? Domain = null, string? Contributor = null, DateTimeOffset? AnnouncedAt = null,
    string? WeightsSha256 = null)
{
    /// <summary>Where to call the host (its first address; the handshake checks its PeerId).</summary>
    public PeerEndpoint Endpoint => new(Addresses[0], Host);
}
