using System.Text.Json;
using MoEMesh.Node.Hosting;
using MoEMesh.Node.Queries;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Node.Cli;

/// <summary>Asks a node for a model's answer to texts over the peer protocol (method model.query, the document of POST /v1/query).</summary>
internal static class ModelQueryClient
{
    /// <summary>
    /// The node's answer; or, when it has none, why (the node's own JSON error, or the transport failure)
    /// and the exit code a verb ends with: 2 a query the node refused, 3 the peer did not answer or no peer
    /// holds the model, 1 the node could not answer.
    /// </summary>
    public static async Task<(QueryAnswer? Answer, string? Error, int ExitCode)> AskAsync(PeerClient client, PeerEndpoint endpoint, string model, IReadOnlyList<string> texts,
        int top, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var body = JsonSerializer.SerializeToUtf8Bytes(new { model, texts, top });
        var deadline = TimeProvider.System.GetUtcNow() + timeout;
        using var response = await client.Transport.CallAsync(endpoint, PeerRequest.Create(MeshNode.QueryMethod, null, body, deadline), cancellationToken);
        if (response.IsOk) return (QueryAnswer.FromJson(response.Payload.Span), null, 0);
        // A node's own refusals carry a JSON error; a transport failure (the peer is down) does not.
        bool fromNode = response.Message.StartsWith('{');
        int exitCode = response.Status switch
        {
            StatusCode.InvalidArgument => 2,
            StatusCode.NotFound => 3,
            StatusCode.Unavailable or StatusCode.DeadlineExceeded when !fromNode => 3,
            _ => 1,
        };
        return (null, ErrorOf(response.Message), exitCode);
    }

    /// <summary>The error message of a node's JSON error document, or the text itself.</summary>
    private static string ErrorOf(string message)
    {
        try
        {
            using var document = JsonDocument.Parse(message);
            return document.RootElement.GetProperty("error").GetString() ?? message;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return message;
        }
    }
}
