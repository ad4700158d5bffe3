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
    public const string Endpoints = "GET / (the status page), GET /v1/status, GET /v1/experts, GET /v1/experts/{uid}, GET /v1/peers, GET /v1/models, GET /v1/routes, POST /v1/query, GET /metrics";

    /// <summary>The methods each GET endpoint takes (HEAD too, as HTTP expects).</summary>
    public static readonly string[] Read = ["GET", "HEAD"];

    public static void UseJsonErrors(this WebApplication app)
    {
        // A handler that throws answers 500 with a JSON error too (the exception goes to the log).
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            ExceptionHandler = http => Write(http, StatusCodes.Status500InternalServerError, "the node failed to answer; its log says why"),
        });
        app.UseStatusCodePages(context => Write(context.HttpContext, context.HttpContext.Response.StatusCode, null));
    }

    private static async Task Write(HttpContext http, int status, string? message)
    {
        message ??= status switch
        {
            StatusCodes.Status404NotFound => $"no endpoint {http.Request.Path}; the endpoints are {Endpoints}",
            StatusCodes.Status405MethodNotAllowed => $"{http.Request.Method} is not taken by {http.Request.Path}; the endpoints are {Endpoints}",
            _ => $"HTTP {status}",
        };
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        await http.Response.WriteAsync(JsonSerializer.Serialize(new { error = message }, Queries.QueryAnswer.Json));
    }
}
