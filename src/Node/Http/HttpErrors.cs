using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace MoEMesh.Node.Http;

/// <summary>
/// Every error of the HTTP API has a JSON body, {"error": "..."}: an unknown path names the endpoints, a
/// method an endpoint does not take names the one it does.
/// </summary>
internal static class HttpErrors
{
    /// <summary>The endpoints, as an unknown path's answer lists them.</summary>
    public const string Endpoints = "GET /v1/status, GET /v1/experts/{uid}, GET /v1/models, POST /v1/query, GET /metrics";

    /// <summary>The methods each GET endpoint takes (HEAD too, as HTTP expects).</summary>
    public static readonly string[] Read = ["GET", "HEAD"];

    public static void UseJsonErrors(this WebApplication app) => app.UseStatusCodePages(async context =>
    {
        var http = context.HttpContext;
        string message = http.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => $"no endpoint {http.Request.Path}; the endpoints are {Endpoints}",
            StatusCodes.Status405MethodNotAllowed => $"{http.Request.Method} is not taken by {http.Request.Path}; the endpoints are {Endpoints}",
            _ => $"HTTP {http.Response.StatusCode}",
        };
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(JsonSerializer.Serialize(new { error = message }, Queries.QueryAnswer.Json));
    });
}
