using MoEMesh.Protocol.Identity;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Models;
using MoEMesh.Node.Models;

namespace MoEMesh.Node.Queries;

/// <summary>
/// Answers queries from any client (POST /v1/query and the peer method model.query): this node is the gating
/// node for them. It loads the model (held here, or fetched from a holder), runs the trunk, gates and head
/// itself, calls experts across the swarm with its own experts as fallback, and answers each text with
/// its label, the most probable labels and its route. Errors are JSON with a status: 400 for a bad query,
/// 404 for a model no peer holds, 503 when no good copy could be fetched or no expert, remote or local,
/// answered in time.
/// </summary>
internal sealed class QueryService(ModelCatalog catalog, ModelServingOptions options, PeerId self, TimeProvider time, Action<string, int, TimeSpan>? measured = null)
{
    /// <summary>The answer to a query body: an HTTP status and the JSON document.</summary>
    public async Task<(int Status, byte[] Json)> AnswerAsync(ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        long started = time.GetTimestamp();
        string model = "";
        int status = 200;
        try
        {
            var query = ModelQuery.Parse(body, options);
            model = query.Model;
            QueryAnswer answer;
            try
            {
                answer = await AnswerAsync(query, started, cancellationToken).WaitAsync(query.Timeout, time, cancellationToken);
            }
            catch (TimeoutException)
            {
                throw new QueryException(503, $"no answer within {query.Timeout.TotalMilliseconds:F0} ms (the query's timeout_ms).");
            }
            return (200, answer.ToJson());
        }
        catch (Exception e) when (Status(e) is { } failure)
        {
            status = failure.Status;
            return (failure.Status, new QueryError(failure.Message).ToJson());
        }
        finally
        {
            measured?.Invoke(model, status, time.GetElapsedTime(started));
        }
    }

    private async Task<QueryAnswer> AnswerAsync(ModelQuery query, long started, CancellationToken cancellationToken)
    {
        var served = await catalog.GetAsync(query.Model, cancellationToken);
        var predictions = await served.PredictAsync(query.Texts, cancellationToken);
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

    private static (int Status, string Message)? Status(Exception e) => e switch
    {
        QueryException q => (q.Status, q.Message),
        ModelNotFoundException m => (404, m.Message),
        ModelFetchFailedException f => (503, f.Message),
        ExpertCallFailedException x => (503, "no expert, remote or local, could answer in time: " + x.Message),
        _ => null,
    };
}
