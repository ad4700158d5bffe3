using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using MoEMesh.Node.Hosting;
using MoEMesh.Node.Queries;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Node.Cli;

/// <summary>
/// <c>moemesh query</c>: sends texts to a node (method model.query, the same document as POST /v1/query),
/// which is their gating node, and prints each text's label, its most probable labels and its route.
/// Texts come as arguments or, with --file, one per line. Exit codes: 0 answered, 1 the node could not
/// answer (no expert in time), 2 bad flags or a query the node refused, 3 the peer did not answer or no
/// peer holds the model.
/// </summary>
internal static class QueryCommand
{
    /// <summary>Texts sent per call with --file.</summary>
    private const int TextsPerCall = 64;

    public static Command Create()
    {
        var peer = CommonOptions.Peer();
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var json = CommonOptions.Json();
        var model = new Option<string>("--model") { Description = "The model's name", Required = true };
        var file = new Option<string?>("--file") { Description = "Read the texts from this file, one per line" };
        var top = new Option<int>("--top") { Description = "Labels to show per text, most probable first [3]", DefaultValueFactory = _ => 3 };
        var texts = new Argument<string[]>("text") { Description = "The texts to classify", Arity = ArgumentArity.ZeroOrMore };
        var command = new Command("query", "Ask a node for a model's answer to texts, with the route each took") { peer, noTls, timeout, json, model, file, top, texts };
        command.SetAction(async (result, cancellationToken) =>
        {
            var all = result.GetValue(texts) ?? [];
            if (result.GetValue(file) is { } path)
            {
                if (all.Length > 0) return Fail("give texts as arguments or with --file, not both.");
                try
                {
                    all = (await File.ReadAllLinesAsync(path, cancellationToken)).Where(l => !string.IsNullOrWhiteSpace(l)).ToArray();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    return Fail($"--file: {path} cannot be read: {e.Message}");
                }
                if (all.Length == 0) return Fail($"--file: {path} holds no text.");
            }
            if (all.Length == 0) return Fail("no text to query: give texts as arguments or --file FILE.");
            if (CommonOptions.ParsePeer(result.GetValue(peer)!) is not { } endpoint) return 2;
            await using var client = new PeerClient(!result.GetValue(noTls));
            var answers = new List<QueryAnswer>();
            foreach (var chunk in all.Chunk(TextsPerCall))
            {
                var body = JsonSerializer.SerializeToUtf8Bytes(new { model = result.GetValue(model), texts = chunk, top = result.GetValue(top) });
                var deadline = TimeProvider.System.GetUtcNow() + TimeSpan.FromSeconds(result.GetValue(timeout));
                using var response = await client.Transport.CallAsync(endpoint, PeerRequest.Create(MeshNode.QueryMethod, null, body, deadline), cancellationToken);
                if (!response.IsOk)
                {
                    Console.Error.WriteLine($"{endpoint}: {ErrorOf(response.Message)}");
                    // A node's own refusals carry a JSON error; a transport failure (the peer is down) does not.
                    bool fromNode = response.Message.StartsWith('{');
                    return response.Status switch
                    {
                        StatusCode.InvalidArgument => 2,
                        StatusCode.NotFound => 3,
                        StatusCode.Unavailable or StatusCode.DeadlineExceeded when !fromNode => 3,
                        _ => 1,
                    };
                }
                answers.Add(QueryAnswer.FromJson(response.Payload.Span));
            }
            if (result.GetValue(json))
            {
                var merged = answers[0] with { Results = answers.SelectMany(a => a.Results).ToArray(), ElapsedMs = answers.Sum(a => a.ElapsedMs) };
                Console.WriteLine(System.Text.Encoding.UTF8.GetString(merged.ToJson()));
                return 0;
            }
            var results = answers.SelectMany(a => a.Results).ToArray();
            Console.WriteLine($"{answers[0].Model} version {answers[0].Version}, answered in {answers.Sum(a => a.ElapsedMs):F1} ms");
            for (int i = 0; i < results.Length; i++) Print(all[i], results[i]);
            return 0;
        });
        return command;
    }

    private static void Print(string text, QueryResult r)
    {
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine($"{(text.Length > 70 ? text[..67] + "..." : text)}");
        Console.WriteLine($"  -> {r.Label}   ({string.Join(", ", r.Probabilities.Select(p => string.Create(c, $"{p.Label} {p.P:F3}")))})");
        foreach (var hop in r.Route)
            Console.WriteLine(string.Create(c, $"     layer {hop.Layer}  {hop.Expert,-12} {Short(hop.Host),-14} weight {hop.Weight:F3}  {hop.LatencyMs,7:F1} ms  {hop.Outcome}"));
    }

    private static string Short(string host) => host.Length > 12 ? host[..12] + "…" : host;

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

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }
}
