using Microsoft.Extensions.Logging;
using MoEMesh.Node.Models;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Queries;

/// <summary>
/// Answers queries from any client (POST /v1/query and the peer method model.query): this node is the gating
/// node for them. It loads the model (held here, or fetched from a holder), runs the trunk, gates and head
/// itself, calls experts across the swarm with its own experts as fallback, and answers each text with
/// its label, the most probable labels and its route. Errors are JSON with a status: 400 for a bad query,
/// 404 for a model no peer holds, 503 when no good copy could be fetched, no expert, remote or local,
/// answered in time, or the query's timeout passed, 500 for anything else (the details go to the log, not
/// to the caller).
/// </summary>
internal sealed partial class QueryService(ModelCatalog catalog, ModelServingOptions options, PeerId self, TimeProvider time, ILogger logger,
    Action<string, int, TimeSpan>? measured = null, RecentQueries? recent = null)
{
    /// <summary>The answer to a query body: an HTTP status and the JSON document.</summary>
    public async Task<(int Status, byte[] Json)> AnswerAsync(ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        long started = time.GetTimestamp();
        // Metrics are labelled with a model only once it was found: names a client makes up add no series.
        string model = "unknown";
        int status = 200;
        ModelQuery? query = null;
        QueryAnswer? answer = null;
        string? error = null;
        try
        {
            query = ModelQuery.Parse(body, options);
            var deadline = time.GetUtcNow() + query.Timeout;
            try
            {
                answer = await AnswerAsync(query, deadline, started, found => model = found, cancellationToken).WaitAsync(query.Timeout, time, cancellationToken);
            }
            catch (TimeoutException)
            {
                throw new QueryException(503, $"no answer within {query.Timeout.TotalMilliseconds:F0} ms (the query's timeout_ms).");
            }
            return (200, answer.ToJson());
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            (status, error) = Failure(e);
            return (status, new QueryError(error).ToJson());
        }
        finally
        {
            var elapsed = time.GetElapsedTime(started);
            measured?.Invoke(model, status, elapsed);
            // A query that was answered or failed, not one whose client left or that did not parse.
            if (query is not null && (answer is not null || error is not null))
                recent?.Add(time.GetUtcNow(), query.Model, query.Texts, status, elapsed.TotalMilliseconds, answer, error);
        }
    }

    private async Task<QueryAnswer> AnswerAsync(ModelQuery query, DateTimeOffset deadline, long started, Action<string> found, CancellationToken cancellationToken)
    {
        ServedModel served;
        IReadOnlyList<SamplePrediction> predictions;
        try
        {
            served = await catalog.GetAsync(query.Model, cancellationToken);
            found(served.Name);
            predictions = await served.PredictAsync(query.Texts, deadline, cancellationToken);
        }
        catch (ModelRetiredException)
        {
            // The model was replaced (a newer version) or unloaded while the query reached it: once more.
            served = await catalog.GetAsync(query.Model, cancellationToken);
            predictions = await served.PredictAsync(query.Texts, deadline, cancellationToken);
        }
        var labels = served.Spec.Head.Labels;
        var results = predictions.Select(p => new QueryResult(
            labels[p.Label],
            Top(p.Probabilities, query.Top).Select(i => new LabelProbability(labels[i], Math.Round(p.Probabilities[i], 6))).ToArray(),
            p.Route.Select(h => new QueryHop(h.Layer, h.Expert, h.Host == "local" ? self.ToString() : h.Host, Math.Round(h.Weight, 6), h.LatencyMs, h.Outcome)).ToArray()))
            .ToArray();
        return new QueryAnswer(served.Name, served.Version, results, Math.Round(time.GetElapsedTime(started).TotalMilliseconds, 3));
    }

    /// <summary>The indices of the <paramref name="count"/> largest values, largest first (ties: lower index first).</summary>
    private static int[] Top(float[] values, int count)
    {
        var top = new List<int>(Math.Min(count, values.Length) + 1);
        for (int i = 0; i < values.Length; i++)
        {
            int at = top.Count;
            while (at > 0 && values[top[at - 1]] < values[i]) at--;
            if (at >= count) continue;
            top.Insert(at, i);
            if (top.Count > count) top.RemoveAt(count);
        }
        return [.. top];
    }

    /// <summary>The status and the message the caller gets; what only the node's operator needs goes to the log.</summary>
    private (int Status, string Message) Failure(Exception e)
    {
        switch (e)
        {
            case QueryException q:
                return (q.Status, q.Message);
            case ModelNotFoundException m:
                return (404, m.Message);
            case ModelFetchFailedException f:
                LogFailed(logger, f.Message);
                return (503, $"no holder of the model gave a copy that checks out ({f.Problems.Count} tried); try again later.");
            case ExpertCallFailedException x:
                LogFailed(logger, x.Message);
                var outcomes = x.Trace.GroupBy(t => t.Outcome).Select(g => $"{g.Count()} {Describe(g.Key)}");
                return (503, $"no expert, remote or local, could answer in time ({(x.Trace.Count == 0 ? "no live expert was found" : string.Join(", ", outcomes))}).");
            case TimeoutException:
                return (503, "no answer within the query's timeout.");
            default:
                LogInternal(logger, e);
                return (500, "the node failed to answer this query; its log says why.");
        }
    }

    private static string Describe(CallOutcome outcome) => outcome switch
    {
        CallOutcome.Timeout => "timed out",
        CallOutcome.Unreachable => "unreachable",
        CallOutcome.Rejected => "refused",
        _ => "answered",
    };

    [LoggerMessage(EventId = 550, Level = LogLevel.Warning, Message = "A query could not be answered: {Problem}")]
    private static partial void LogFailed(ILogger logger, string problem);

    [LoggerMessage(EventId = 551, Level = LogLevel.Error, Message = "A query failed on this node")]
    private static partial void LogInternal(ILogger logger, Exception exception);
}
