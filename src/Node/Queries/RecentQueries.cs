namespace MoEMesh.Node.Queries;

/// <summary>
/// The last queries this node answered as gating node, newest first, with their routes: what GET /v1/routes
/// and the status page show. Holds at most <c>capacity</c> of them (<see cref="Models.ModelServingOptions.RecentQueries"/>;
/// zero keeps none) and only the first <see cref="TextChars"/> characters of each text.
/// </summary>
internal sealed class RecentQueries(int capacity)
{
    /// <summary>Characters of a text kept.</summary>
    public const int TextChars = 120;

    private readonly Queue<RecentQuery> _queries = new();

    /// <summary>Keeps one answered query (or its failure), dropping the oldest beyond capacity.</summary>
    public void Add(DateTimeOffset at, string model, IReadOnlyList<string> texts, int status, double elapsedMs, QueryAnswer? answer, string? error)
    {
        if (capacity == 0) return;
        var results = texts.Select((text, i) => new RecentText(
            Shortened(text),
            answer?.Results[i].Label,
            answer?.Results[i].Route ?? [])).ToArray();
        var query = new RecentQuery(at, model, answer?.Version, status, Math.Round(elapsedMs, 3), results, error);
        lock (_queries)
        {
            _queries.Enqueue(query);
            while (_queries.Count > capacity) _queries.Dequeue();
        }
    }

    /// <summary>The first <see cref="TextChars"/> characters of <paramref name="text"/> (never half a surrogate pair), with an ellipsis when cut.</summary>
    private static string Shortened(string text)
    {
        if (text.Length <= TextChars) return text;
        int cut = char.IsHighSurrogate(text[TextChars - 1]) ? TextChars - 1 : TextChars;
        return text[..cut] + "…";
    }

    /// <summary>The queries kept, newest first.</summary>
    public IReadOnlyList<RecentQuery> Newest()
    {
        lock (_queries) return _queries.Reverse().ToArray();
    }
}

/// <summary>A query in GET /v1/routes: when, which model and version, the HTTP status, time, and each text with its label and route (or the error).</summary>
public sealed record RecentQuery(DateTimeOffset At, string Model, long? Version, int Status, double ElapsedMs, IReadOnlyList<RecentText> Texts, string? Error);

/// <summary>A text of a recent query (cut to its first characters), its label and its route.</summary>
public sealed record RecentText(string Text, string? Label, IReadOnlyList<QueryHop> Route);
