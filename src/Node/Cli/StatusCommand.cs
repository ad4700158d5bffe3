using System.CommandLine;
using System.Text.Json;
using MoEMesh.Node.Http;
using MoEMesh.Protocol.Rpc;

namespace MoEMesh.Node.Cli;

/// <summary><c>moemesh status --peer ADDR</c>: asks a running node for its status over the peer protocol.</summary>
internal static class StatusCommand
{
    public static Command Create()
    {
        var peer = CommonOptions.Peer();
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var json = new Option<bool>("--json") { Description = "Print the status document as JSON" };
        var command = new Command("status", "Show a running node's identity, addresses, DHT view and hosted experts") { peer, noTls, timeout, json };
        command.SetAction(async (result, cancellationToken) =>
        {
            if (CommonOptions.ParsePeer(result.GetValue(peer)!) is not { } endpoint) return 2;
            await using var client = new PeerClient(!result.GetValue(noTls));
            var deadline = TimeProvider.System.GetUtcNow() + TimeSpan.FromSeconds(result.GetValue(timeout));
            using var response = await client.Transport.CallAsync(endpoint, new PeerRequest(NodeStatus.Method, default, default, deadline), cancellationToken);
            if (!response.IsOk)
            {
                Console.Error.WriteLine($"status of {endpoint}: {response}");
                // The peer did not answer (unreachable, not a peer port, timed out): 3, as for every verb.
                return response.Status is Protocol.Wire.StatusCode.Unavailable or Protocol.Wire.StatusCode.DeadlineExceeded ? 3 : 1;
            }
            if (result.GetValue(json))
            {
                Console.WriteLine(System.Text.Encoding.UTF8.GetString(response.Payload.Span));
                return 0;
            }
            NodeStatus status;
            try
            {
                status = NodeStatus.FromJson(response.Payload.Span);
            }
            catch (JsonException e)
            {
                Console.Error.WriteLine($"status of {endpoint}: the answer is not a status document: {e.Message}");
                return 1;
            }
            Print(status);
            return 0;
        });
        return command;
    }

    private static void Print(NodeStatus s)
    {
        Console.WriteLine($"peer id        {s.PeerId}");
        Console.WriteLine($"listening on   {s.ListenAddress}; announced as {string.Join(", ", s.AnnounceAddresses)}{(s.ClientMode ? " (client mode)" : "")}");
        Console.WriteLine($"reachability   {Reachability(s.Reachability)}");
        Console.WriteLine($"DHT            {Words.Count(s.RoutingTableSize, "contact")}, {Words.Count(s.DhtRecords, "record")} held");
        Console.WriteLine($"uptime         {Words.Duration(TimeSpan.FromSeconds(s.UptimeSeconds))}{(s.AnnouncedAfterMs is { } ms ? $"; experts announced {Words.Duration(TimeSpan.FromMilliseconds(ms))} after start" : "")}");
        Console.WriteLine($"experts        {s.Experts.Count}");
        foreach (var e in s.Experts)
            Console.WriteLine($"  {e.Uid,-16} {e.Type,-8} {e.Schema,-24} updates {e.Updates,6}  queue {e.QueueDepth,3}  p50 {e.LatencyP50Ms,8:F2} ms  p95 {e.LatencyP95Ms,8:F2} ms");
    }

    private static string Reachability(ReachabilityStatus r)
    {
        string state = r.State switch
        {
            "reachable" => $"reachable at {r.ReachedAt ?? r.Address} ({r.Peers.Count(p => p.Reached)} of {r.Peers.Count} peers dialled back)",
            "unreachable" => r.Relays.Count > 0 ? $"NOT reachable at {r.Address}; reached through {string.Join(", ", r.Relays)}" : $"NOT reachable at {r.Address}, and no relay yet",
            _ => "not checked yet (no peer to ask)",
        };
        return r.Relaying is { Reservations: > 0 } relaying
            ? $"{state}; relays for {Words.Count(relaying.Reservations, "peer")} ({Words.Count(relaying.Circuits, "connection")} open, {relaying.BytesRelayed:N0} bytes so far)"
            : state;
    }
}
