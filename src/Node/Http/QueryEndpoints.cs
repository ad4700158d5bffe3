using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using MoEMesh.Node.Hosting;
using MoEMesh.Node.Queries;

namespace MoEMesh.Node.Http;

/// <summary>
/// The model endpoints of the HTTP API: POST /v1/query answers a query (any client needs nothing but
/// HTTP), GET /v1/models lists the models the swarm holds as this node sees the DHT, and which of them
/// this node holds and has loaded.
/// </summary>
internal static class QueryEndpoints
{
    public static void MapQueries(this WebApplication app)
    {
        app.MapPost("/v1/query", async (HttpContext http, MeshNode node) =>
        {
            var body = await ReadBodyAsync(http.Request, node.Options.Models.MaxQueryBytes, http.RequestAborted);
            var (status, json) = body is null
                ? (413, new QueryError($"the body is larger than {node.Options.Models.MaxQueryBytes} bytes (MaxQueryBytes).").ToJson())
                : await node.AnswerQueryAsync(body.Value, http.RequestAborted);
            http.Response.StatusCode = status;
            http.Response.ContentType = "application/json";
            http.Response.ContentLength = json.Length;
            await http.Response.Body.WriteAsync(json, http.RequestAborted);
        });
        app.MapMethods("/v1/models", HttpErrors.Read, async (MeshNode node, CancellationToken cancellationToken) =>
        {
            var known = await node.Models.ListAsync(cancellationToken);
            var held = node.HeldModels.ToDictionary(m => m.Name, StringComparer.Ordinal);
            var loaded = node.LoadedModels.ToDictionary(m => m.Name, StringComparer.Ordinal);
            var names = known.Select(m => m.Name).Concat(held.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal);
            return Results.Json(names.Select(name =>
            {
                var summary = known.FirstOrDefault(m => m.Name == name);
                var newest = summary?.Newest ?? held[name].Publication;
                return new ModelListing(name, newest.Version, newest.Sha256, (long)newest.Size,
                    Routing.Models.ModelPublications.PublisherOf(newest)?.ToString(),
                    summary?.Holders.Select(h => new ModelHolder(h.Host.ToString(), h.Version)).ToArray() ?? [],
                    held.TryGetValue(name, out var h) ? h.Publication.Version : null,
                    loaded.TryGetValue(name, out var l) ? l.Version : null);
            }).ToArray(), QueryAnswer.Json);
        });
    }

    /// <summary>The request body, or null when it is longer than <paramref name="limit"/> bytes.</summary>
    private static async Task<ReadOnlyMemory<byte>?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit) return null;
        // Sized by Content-Length when the client sends one (it usually does), grown otherwise.
        var buffer = new byte[(int)(request.ContentLength ?? 4096) + 1];
        int length = 0, read;
        while ((read = await request.Body.ReadAsync(buffer.AsMemory(length), cancellationToken)) > 0)
        {
            length += read;
            if (length > limit) return null;
            if (length == buffer.Length) Array.Resize(ref buffer, Math.Min(2 * buffer.Length, limit + 1));
        }
        return buffer.AsMemory(0, length);
    }
}

/// <summary>A model in GET /v1/models: its newest version in the swarm, who holds what, and this node's copies.</summary>
public sealed record ModelListing(string Name, long Version, string Sha256, long Size, string? Publisher, IReadOnlyList<ModelHolder> Holders, long? HeldVersion, long? LoadedVersion);

/// <summary>A holder of a model and the version it holds.</summary>
public sealed record ModelHolder(string PeerId, long Version);
