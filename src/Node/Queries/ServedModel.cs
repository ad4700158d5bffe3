using System.Threading.Channels;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Queries;

/// <summary>
/// A model loaded to answer queries. Concurrent queries are batched: one loop takes every query waiting
/// (up to MaxBatchTexts texts) and runs them through the model as one batch, so each layer's gate, beam
/// search and expert calls serve them all at once; queries that arrive while a batch runs form the next.
/// When a merged batch fails (some text got no answer), its queries are run again one by one, so one
/// query's failure is not another's. Disposing stops taking queries and finishes those waiting.
/// </summary>
internal sealed class ServedModel : IAsyncDisposable
{
    /// <summary>Queries that may wait for a batch; beyond it a query is refused as busy.</summary>
    public const int MaxWaiting = 1024;

    private readonly Channel<Pending> _waiting = Channel.CreateBounded<Pending>(new BoundedChannelOptions(MaxWaiting) { SingleReader = true });
    private readonly int _maxBatchTexts;
    private readonly Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyList<SamplePrediction>>> _predict;
    private readonly Task _loop;
    private int _batches;

    public ServedModel(string name, long version, string sha256, MoEModel model, int maxBatchTexts)
        : this(name, version, sha256, model.Spec, model.PredictAsync, maxBatchTexts)
    {
    }

    /// <summary>A model served through <paramref name="predict"/> (the model's own, or a test's).</summary>
    public ServedModel(string name, long version, string sha256, ModelSpec spec, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyList<SamplePrediction>>> predict,
        int maxBatchTexts)
    {
        Name = name;
        Version = version;
        Sha256 = sha256;
        Spec = spec;
        _predict = predict;
        _maxBatchTexts = maxBatchTexts;
        _loop = Task.Run(RunAsync);
    }

    public string Name { get; }

    public long Version { get; }

    public string Sha256 { get; }

    public ModelSpec Spec { get; }

    /// <summary>Batches run so far (a batch serves every query it took).</summary>
    public int Batches => Volatile.Read(ref _batches);

    /// <summary>Predictions for <paramref name="texts"/>, batched with other queries waiting.</summary>
    /// <exception cref="QueryException">503 when too many queries wait.</exception>
    /// <exception cref="ExpertCallFailedException">Some text got no expert answer and no local expert could answer.</exception>
    public Task<IReadOnlyList<SamplePrediction>> PredictAsync(IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        var pending = new Pending(texts, cancellationToken);
        if (!_waiting.Writer.TryWrite(pending)) throw new QueryException(503, $"{MaxWaiting} queries of {Name} are already waiting; try again shortly.");
        return pending.Answer.Task;
    }

    public async ValueTask DisposeAsync()
    {
        _waiting.Writer.TryComplete();
        await _loop;
    }

    private async Task RunAsync()
    {
        var batch = new List<Pending>();
        while (await _waiting.Reader.WaitToReadAsync())
        {
            batch.Clear();
            int texts = 0;
            while (_waiting.Reader.TryPeek(out var next) && (batch.Count == 0 || texts + next.Texts.Count <= _maxBatchTexts))
            {
                _waiting.Reader.TryRead(out _);
                if (next.Cancelled.IsCancellationRequested)
                {
                    next.Answer.TrySetCanceled(next.Cancelled);
                    continue;
                }
                batch.Add(next);
                texts += next.Texts.Count;
            }
            if (batch.Count == 0) continue;
            try
            {
                Interlocked.Increment(ref _batches);
                var predictions = await _predict(batch.SelectMany(p => p.Texts).ToArray(), CancellationToken.None);
                int start = 0;
                foreach (var p in batch)
                {
                    p.Answer.TrySetResult(predictions.Skip(start).Take(p.Texts.Count).ToArray());
                    start += p.Texts.Count;
                }
            }
            catch (ExpertCallFailedException) when (batch.Count > 1)
            {
                foreach (var p in batch) await RunAloneAsync(p);
            }
            catch (Exception e)
            {
                foreach (var p in batch) p.Answer.TrySetException(e);
            }
        }
    }

    private async Task RunAloneAsync(Pending pending)
    {
        try
        {
            Interlocked.Increment(ref _batches);
            pending.Answer.TrySetResult(await _predict(pending.Texts, CancellationToken.None));
        }
        catch (Exception e)
        {
            pending.Answer.TrySetException(e);
        }
    }

    private sealed record Pending(IReadOnlyList<string> Texts, CancellationToken Cancelled)
    {
        public TaskCompletionSource<IReadOnlyList<SamplePrediction>> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
