using Google.Protobuf;
using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;
using MoEMesh.Dht.Storage;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using Wire = MoEMesh.Protocol.Wire.Dht;

namespace MoEMesh.Dht.Transport;

/// <summary>Conversions between the DHT's types and the messages of <c>dht.proto</c>.</summary>
internal static class DhtWire
{
    private static readonly long MinUnixMs = DateTimeOffset.MinValue.ToUnixTimeMilliseconds();
    private static readonly long MaxUnixMs = DateTimeOffset.MaxValue.ToUnixTimeMilliseconds();

    public static Wire.DhtSender ToWire(DhtSender sender) =>
        new() { Address = sender.Address?.ToString() ?? "", ClientMode = sender.ClientMode };

    /// <summary>The sender of a request: the PeerId the connection proved, the address it claims.</summary>
    /// <exception cref="FormatException">The claimed address is not host:port.</exception>
    public static DhtSender FromWire(PeerId caller, Wire.DhtSender? sender)
    {
        if (sender is null || sender.Address.Length == 0) return new DhtSender(caller, null, sender?.ClientMode ?? true);
        if (!PeerAddress.TryParse(sender.Address, out var address))
            throw new FormatException($"sender address '{sender.Address}' is not host:port");
        return new DhtSender(caller, address, sender.ClientMode);
    }

    public static Wire.DhtRecord ToWire(DhtRecord record)
    {
        var wire = new Wire.DhtRecord
        {
            Key = record.Key,
            Value = ByteString.CopyFrom(record.Value.Span),
            ExpirationUnixMs = record.ExpirationUnixMs,
            PublicKey = ByteString.CopyFrom(record.PublicKey.Span),
            Signature = ByteString.CopyFrom(record.Signature.Span),
        };
        if (record.Subkey is not null) wire.Subkey = record.Subkey;
        return wire;
    }

    /// <summary>A record as received; absurd expirations are clamped (and then rejected by validation).</summary>
    public static DhtRecord FromWire(Wire.DhtRecord wire) => DhtRecord.FromWire(
        wire.Key, wire.HasSubkey ? wire.Subkey : null, wire.Value.Memory,
        DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(wire.ExpirationUnixMs, MinUnixMs, MaxUnixMs)),
        wire.PublicKey.Memory, wire.Signature.Memory);

    public static Wire.DhtContact ToWire(DhtContact contact) => new() { PeerId = contact.PeerId.ToString(), Address = contact.Address.ToString() };

    /// <summary>A contact from a find answer, or null when either field is malformed or the address cannot be dialled (it is skipped).</summary>
    public static DhtContact? FromWire(Wire.DhtContact wire) =>
        PeerId.TryParse(wire.PeerId, out var peer) && PeerAddress.TryParse(wire.Address, out var address) && address.IsDialable ? new DhtContact(peer, address) : null;

    public static Wire.FindQuery ToWire(FindQuery query)
    {
        var wire = new Wire.FindQuery { Target = ByteString.CopyFrom(query.Target.ToBytes()) };
        if (query.Key is not null) wire.Key = query.Key;
        return wire;
    }

    /// <exception cref="FormatException">The target is not 32 bytes.</exception>
    public static FindQuery FromWire(Wire.FindQuery wire, int index)
    {
        if (wire.Target.Length != 32) throw new FormatException($"query {index}: target has {wire.Target.Length} bytes; ids have 32");
        return new FindQuery(NodeId.FromBytes(wire.Target.Span), wire.HasKey ? wire.Key : null);
    }

    public static Wire.StoreResult ToWire(StoreOutcome outcome) => new() { Status = (Wire.StoreStatus)outcome.Status, Reason = outcome.Reason ?? "" };

    public static StoreOutcome FromWire(Wire.StoreResult wire) =>
        Enum.IsDefined((StoreStatus)wire.Status)
            ? new StoreOutcome((StoreStatus)wire.Status, wire.Reason.Length == 0 ? null : wire.Reason)
            : new StoreOutcome(StoreStatus.Rejected, $"unknown store status {(int)wire.Status}");
}
