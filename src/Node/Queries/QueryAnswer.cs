using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoEMesh.Node.Queries;

/// <summary>The answer to a query (POST /v1/query and the peer method model.query), as JSON.</summary>
public sealed record QueryAnswer(string Model, long Version, IReadOnlyList<QueryResult> Results, double ElapsedMs)
{
    /// <summary>snake_case JSON, as the HTTP API documents it.</summary>
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        // Answers are application/json, never embedded in HTML: keep quotes and accents readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The JSON document.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, QueryJson.Documented.QueryAnswer);

    /// <summary>Reads the JSON document.</summary>
    /// <exception cref="JsonException">The bytes are not an answer.</exception>
    public static QueryAnswer FromJson(ReadOnlySpan<byte> json) => JsonSerializer.Deserialize(json, QueryJson.Documented.QueryAnswer) ?? throw new JsonException("the answer is empty");
}

/// <summary>Serializers for the query documents, generated at build time (every answer is serialized on the query path).</summary>
[JsonSerializable(typeof(QueryAnswer))]
[JsonSerializable(typeof(QueryError))]
internal sealed partial class QueryJson : JsonSerializerContext
{
    /// <summary>The context with the documented options (snake_case, readable escaping).</summary>
    public static QueryJson Documented { get; } = new(new JsonSerializerOptions(MoEMesh.Node.Queries.QueryAnswer.Json));
}

/// <summary>One text's answer: the predicted label, the most probable labels, and its route.</summary>
public sealed record QueryResult(string Label, IReadOnlyList<LabelProbability> Probabilities, IReadOnlyList<QueryHop> Route);

/// <summary>A label and its probability.</summary>
public sealed record LabelProbability(string Label, double P);

/// <summary>One expert the text met: layer, uid ("null" for a null expert), host PeerId, weight, call latency, outcome (ok, fallback, timeout, failed, null).</summary>
public sealed record QueryHop(int Layer, string Expert, string Host, double Weight, double LatencyMs, string Outcome);

/// <summary>What an error answers: {"error": "..."}.</summary>
public sealed record QueryError(string Error)
{
    /// <summary>The JSON document.</summary>
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, QueryJson.Documented.QueryError);
}
