using Microsoft.Extensions.Logging;

namespace MoEMesh.Dht;

/// <summary>Client mode switched at run time: a node that finds it cannot be dialled stops holding records for others.</summary>
public sealed partial class DhtNode
{
    /// <summary>
    /// Makes this node a client (nobody can dial it, so records must not live only here) or a full member
    /// again. Turning client, it hands every record it holds to the nodes now nearest their keys (as a
    /// republish does), refuses stores from then on, and tells peers in each request not to add it to
    /// their tables; the records it held expire here on their own. Turning member, peers learn it from its
    /// next requests. A node made without an address stays a client.
    /// </summary>
    public void SetClientMode(bool client)
    {
        lock (_gate)
        {
            if (Sender.ClientMode == client || (!client && Sender.Address is null)) return;
            Sender = Sender with { ClientMode = client };
        }
        LogMode(_logger, client ? "a client: it holds no records for others" : "a full member again");
        if (client) _background.Run("hand-off", HandOffHeldAsync);
    }

    /// <summary>
    /// Changes the address this node gives peers in its requests (the node daemon does when peers reach it
    /// elsewhere than it announced: a forwarded port behind a NAT).
    /// </summary>
    public void SetAddress(MoEMesh.Protocol.Addressing.PeerAddress address)
    {
        lock (_gate) Sender = Sender with { Address = address };
    }

    private async Task HandOffHeldAsync()
    {
        List<Records.DhtRecord> held;
        lock (_gate) held = _store.Unrenewed(Time.GetUtcNow(), TimeSpan.Zero);
        foreach (var chunk in held.GroupBy(r => r.Key, StringComparer.Ordinal).Chunk(Options.MaxKeysPerRpc))
            await StoreManyAsync(chunk.SelectMany(g => g).ToArray(), _stopping.Token);
    }

    [LoggerMessage(EventId = 416, Level = LogLevel.Information, Message = "This DHT node is now {Mode}")]
    private static partial void LogMode(ILogger logger, string mode);
}
