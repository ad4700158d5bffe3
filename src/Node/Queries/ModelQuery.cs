using System.Text.Json;
using MoEMesh.Node.Models;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Queries;

/// <summary>
/// A query as a client sends it to any node: <c>{"model": "NAME", "text": "..."}</c> or
/// <c>{"model": "NAME", "texts": ["...", ...]}</c> (at most MaxQueryTexts), optional <c>"top"</c> (probabilities
/// to return per text, default 5) and <c>"timeout_ms"</c> (default QueryTimeout, at most MaxQueryTimeout).
/// </summary>
internal sealed record ModelQuery(string Model, IReadOnlyList<string> Texts, int Top, TimeSpan Timeout)
{
    private static readonly string[] Fields = ["model", "text", "texts", "top", "timeout_ms"];

    /// <summary>Reads and checks a query body.</summary>
    /// <exception cref="QueryException">400 naming what is wrong.</exception>
    public static ModelQuery Parse(ReadOnlyMemory<byte> body, ModelServingOptions options)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            // The parser's own message ends with its zero-based position; say it the way people count.
            int cut = e.Message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            throw QueryException.BadRequest($"the body is not JSON (line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}): {(cut > 0 ? e.Message[..cut] : e.Message)}");
        }
        using (document) return Read(document.RootElement, options);
    }

    /// <summary>
    /// A string's text. The parser takes "\ud800" (half of a UTF-16 pair, escaped) inside a string; reading the
    /// string refuses it, and so does this, with a 400.
    /// </summary>
    private static string Text(Func<string> read)
    {
        try
        {
            return read();
        }
        catch (InvalidOperationException)
        {
            throw QueryException.BadRequest("the body holds a string that is not text: an escaped half of a UTF-16 surrogate pair (such as \\ud800) without its other half.");
        }
    }

    private static ModelQuery Read(JsonElement root, ModelServingOptions options)
    {
        if (root.ValueKind != JsonValueKind.Object) throw QueryException.BadRequest("the body must be a JSON object such as {\"model\": \"NAME\", \"text\": \"...\"}.");
        foreach (var property in root.EnumerateObject())
            if (Text(() => property.Name) is var field && !Fields.Contains(field))
                throw QueryException.BadRequest($"unknown field '{field}'; a query has {string.Join(", ", Fields)}.");
        if (!root.TryGetProperty("model", out var model)) throw QueryException.BadRequest("the field 'model' (a string, the model's name) is missing.");
        if (model.ValueKind != JsonValueKind.String) throw QueryException.BadRequest($"'model' must be a string, the model's name; got {model.GetRawText()}.");
        var name = Text(() => model.GetString()!);
        if (!ModelFile.IsValidName(name, out var error)) throw QueryException.BadRequest($"'model': {error}");
        bool hasText = root.TryGetProperty("text", out var text), hasTexts = root.TryGetProperty("texts", out var texts);
        if (hasText == hasTexts) throw QueryException.BadRequest("give exactly one of 'text' (a string) and 'texts' (an array of strings).");
        var all = new List<string>();
        if (hasText)
        {
            if (text.ValueKind != JsonValueKind.String) throw QueryException.BadRequest("'text' must be a string.");
            all.Add(Text(() => text.GetString()!));
        }
        else
        {
            if (texts.ValueKind != JsonValueKind.Array) throw QueryException.BadRequest("'texts' must be an array of strings.");
            int count = texts.GetArrayLength();
            if (count == 0) throw QueryException.BadRequest("'texts' is empty.");
            if (count > options.MaxQueryTexts) throw QueryException.BadRequest($"'texts' has {count} texts; a query takes at most {options.MaxQueryTexts} (MaxQueryTexts).");
            foreach (var item in texts.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String) throw QueryException.BadRequest($"'texts' item {all.Count} is not a string.");
                all.Add(Text(() => item.GetString()!));
            }
        }
        // A text has words exactly when it has a letter or digit (TextFeatures' rule).
        for (int i = 0; i < all.Count; i++)
            if (!all[i].Any(char.IsLetterOrDigit))
                throw QueryException.BadRequest(hasText ? "'text' has no words." : $"'texts' item {i} has no words.");
        int top = 5;
        if (root.TryGetProperty("top", out var topValue) && (topValue.ValueKind != JsonValueKind.Number || !topValue.TryGetInt32(out top) || top is < 1 or > 1000))
            throw QueryException.BadRequest($"'top' must be a whole number from 1 to 1000; got {topValue.GetRawText()}.");
        var timeout = options.QueryTimeout;
        if (root.TryGetProperty("timeout_ms", out var timeoutValue))
        {
            if (timeoutValue.ValueKind != JsonValueKind.Number || !timeoutValue.TryGetDouble(out double ms) || !(ms > 0) || ms > options.MaxQueryTimeout.TotalMilliseconds)
                throw QueryException.BadRequest($"'timeout_ms' must be a number above 0 and at most {options.MaxQueryTimeout.TotalMilliseconds:F0}; got {timeoutValue.GetRawText()}.");
            timeout = TimeSpan.FromMilliseconds(ms);
        }
        return new ModelQuery(name, all, top, timeout);
    }
}

/// <summary>A query that cannot be answered: the HTTP status and a message a person can act on.</summary>
internal sealed class QueryException(int status, string message) : Exception(message)
{
    public int Status { get; } = status;

    public static QueryException BadRequest(string message) => new(400, message);
}
