using System.CommandLine;
using System.Text.Json;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Cli;

/// <summary><c>moemesh models</c>: the models the swarm holds, as the DHT's model index lists them: version, size, publisher and holders.</summary>
internal static class ModelsCommand
{
    public static Command Create()
    {
        var peer = CommonOptions.Peer();
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var json = CommonOptions.Json();
        var command = new Command("models", "List the models the swarm holds, with version, size and holders") { peer, noTls, timeout, json };
        command.SetAction(async (result, cancellationToken) =>
        {
            var (swarm, exit) = await SwarmClient.JoinAsync(result.GetValue(peer)!, !result.GetValue(noTls), result.GetValue(timeout), null, null, cancellationToken);
            if (swarm is null) return exit;
            await using (swarm)
            {
                var models = await swarm.Models.ListAsync(cancellationToken);
                var rows = models.Select(m => new
                {
                    name = m.Name,
                    version = m.Newest.Version,
                    saved = m.Newest.Version is >= 0 and <= 253_402_300_799_999 ? DateTimeOffset.FromUnixTimeMilliseconds(m.Newest.Version).ToString("yyyy-MM-dd HH:mm:ss") : $"version {m.Newest.Version}",
                    size = (long)m.Newest.Size,
                    sha256 = m.Newest.Sha256,
                    publisher = ModelPublications.PublisherOf(m.Newest)?.ToString(),
                    holders = m.Holders.Select(h => new { peer_id = h.Host.ToString(), address = h.Addresses[0].ToString(), version = h.Version }).ToArray(),
                }).ToArray();
                if (result.GetValue(json))
                {
                    Console.WriteLine(JsonSerializer.Serialize(rows, new JsonSerializerOptions { WriteIndented = true }));
                    return 0;
                }
                if (rows.Length == 0)
                {
                    Console.WriteLine($"no models are held in the swarm, as {swarm.Entry} sees it");
                    return 0;
                }
                Console.WriteLine($"{"model",-24} {"version (saved, UTC)",-22} {"size",10}  holders");
                foreach (var m in rows)
                    Console.WriteLine($"{m.name,-24} {m.saved,-22} {m.size / 1048576.0,7:F1} MB  {m.holders.Count(h => h.version == m.version)} of {m.holders.Length} hold the newest: "
                        + string.Join(", ", m.holders.Select(h => h.address)));
                return 0;
            }
        });
        return command;
    }
}
