using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using MoEMesh.Node.Hosting;
using MoEMesh.Node.Queries;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Node.Http;

/// <summary>
/// The swarm endpoints of the HTTP API, behind the status page: GET /v1/experts (every expert of the grids
/// this node knows of, ?grid=NAME adds one), /v1/experts/{uid} (one expert's hosts), /v1/peers (the DHT's
/// routing table and bans) and /v1/routes (the last queries answered here, with their routes).
/// </summary>
internal static class SwarmEndpoints
{
    /// <summary>Grids one request may ask for by name (each costs DHT lookups).</summary>
    public const int MaxAskedGrids = 8;

    public static void MapSwarm(this WebApplication app)
    {
        app.MapMethods("/v1/experts", HttpErrors.Read, async (HttpContext http, MeshNode node, CancellationToken cancellationToken) =>
        {
            var asked = new List<ExpertPrefix>();
            var grids = http.Request.Query["grid"];
            if (grids.Count > MaxAskedGrids) return BadRequest($"'grid' is given {grids.Count} times; at most {MaxAskedGrids} grids are listed per request.");
            foreach (var grid in grids)
            {
                if (string.IsNullOrEmpty(grid)) return BadRequest("'grid' is empty; give a grid name such as ffn.");
                if (!ExpertPrefix.TryParse(grid + ".", out var prefix, out var error) || prefix.Coordinates.Count > 0)
                    return BadRequest($"'grid': '{grid}' is not a grid name such as ffn{(error.Length > 0 ? $": {error.TrimEnd('.')}" : " (a name alone, without coordinates)")}.");
                asked.Add(prefix);
            }
            return Results.Json(await SwarmView.ExpertsAsync(node, asked, cancellationToken), QueryAnswer.Json);
        });
        app.MapMethods("/v1/experts/{uid}", HttpErrors.Read, async (string uid, MeshNode node, CancellationToken cancellationToken) =>
        {
            if (!ExpertUid.TryParse(uid, out var parsed, out var error)) return BadRequest(error);
            var hosts = (await node.Directory.FindAsync([parsed], cancellationToken))[parsed];
            return Results.Json(hosts.Select(h => SwarmView.Host(node, h)).ToArray(), QueryAnswer.Json);
        });
        app.MapMethods("/v1/peers", HttpErrors.Read, (MeshNode node) => Results.Json(SwarmView.Peers(node), QueryAnswer.Json));
        app.MapMethods("/v1/routes", HttpErrors.Read, (MeshNode node) => Results.Json(new { queries = node.RecentQueries.Newest() }, QueryAnswer.Json));
    }

    private static IResult BadRequest(string error) => Results.Json(new QueryError(error), QueryAnswer.Json, statusCode: 400);
}
