using System.CommandLine;
using MoEMesh.Node.Queries;

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
                var asked = await ModelQueryClient.AskAsync(client, endpoint, result.GetValue(model)!, chunk, result.GetValue(top), TimeSpan.FromSeconds(result.GetValue(timeout)), cancellationToken);
                if (asked.Answer is not { } answer)
                {
                    Console.Error.WriteLine($"{endpoint}: {asked.Error}");
                    return asked.ExitCode;
                }
                answers.Add(answer);
            }
            if (result.GetValue(json))
            {
                var merged = answers[0] with { Results = answers.SelectMany(a => a.Results).ToArray(), ElapsedMs = answers.Sum(a => a.ElapsedMs) };
                Console.WriteLine(System.Text.Encoding.UTF8.GetString(merged.ToJson()));
                return 0;
            }
            var results = answers.SelectMany(a => a.Results).ToArray();
            Console.WriteLine($"{answers[0].Model} version {answers[0].Version}, answered in {answers.Sum(a => a.ElapsedMs):F1} ms");
            for (int i = 0; i < results.Length; i++) QueryView.Print(Console.Out, all[i], results[i]);
            return 0;
        });
        return command;
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine(message);
        return 2;
    }
}
