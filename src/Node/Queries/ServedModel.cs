using System.Threading.Channels;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Calling;
using MoEMesh.Routing.Models;

namespace MoEMesh.Node.Queries;

/// <summary>
/// A model loaded to answer queries. Concurrent queries are batched: one loop takes every query waiting
/// (up to MaxBatchTexts texts) and runs them through the model as one batch, so each layer's gate, beam
/// search and expert calls serve them all at once; queries that arrive while a batch runs form the next.
/// Clients that were just answered usually ask again at once; so that they and those already waiting
/// form one batch instead of two half batches taking turns, the loop lingers up to <c>linger</c> for as
/// many texts as the last batch answered and have not come back yet (a lone client never waits).
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
    private readonly TimeSpan _linger;
    private readonly TimeProvider _time;
    private TaskCompletionSource _arrival = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _batches, _queuedTexts, _arrivedSinceBatch;
    private bool _retired;

    public ServedModel(string name, long version, ModelPublication publication, MoEModel model, int maxBatchTexts, TimeSpan linger, TimeProvider time)
        : this(name, version, publication, model.Spec, model.PredictAsync, maxBatchTexts, linger, time)
    {
    }

    /// <summary>A model served through <paramref name="predict"/> (the model's own, or a test's).</summary>
    public ServedModel(string name, long version, ModelPublication publication, ModelSpec spec, Func<IReadOnlyList<string>, CancellationToken, Task<IReadOnlyList<SamplePrediction>>> predict,
        int maxBatchTexts, TimeSpan linger, TimeProvider time)
    {
        _linger = linger;
        _time = time;
        Name = name;
        Version = version;
        Publication = publication;
        Spec = spec;
        _predict = predict;
        _maxBatchTexts = maxBatchTexts;
        _loop = Task.Run(RunAsync);
    }

    public string Name { get; }

    public long Version { get; }

    /// <summary>The publication of the copy loaded (its file's SHA-256 and publisher).</summary>
    public ModelPublication Publication { get; }

    public ModelSpec Spec { get; }

    /// <summary>Batches run so far (a batch serves every query it took).</summary>
    public int Batches => Volatile.Read(ref _batches);

    /// <summary>
    /// Predictions for <paramref name="texts"/>, batched with other queries waiting. A query still waiting
    /// at its <paramref name="deadline"/> is dropped from the batch (it fails with a <see cref="TimeoutException"/>).
    /// </summary>
    /// <exception cref="QueryException">503 when too many queries wait.</exception>
    /// <exception cref="ModelRetiredException">The model was replaced or unloaded: ask the catalog again.</exception>
    /// <exception cref="ExpertCallFailedException">Some text got no expert answer and no local expert could answer.</exception>
    public Task<IReadOnlyList<SamplePrediction>> PredictAsync(IReadOnlyList<string> texts, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var pending = new Pending(texts, deadline, cancellationToken);
        Interlocked.Add(ref _queuedTexts, texts.Count);
        if (!_waiting.Writer.TryWrite(pending))
        {
            Interlocked.Add(ref _queuedTexts, -texts.Count);
            if (Volatile.Read(ref _retired)) throw new ModelRetiredException();
            throw new QueryException(503, $"{MaxWaiting} queries of {Name} are already waiting; try again shortly.");
        }
        Interlocked.Add(ref _arrivedSinceBatch, texts.Count);
        Interlocked.Exchange(ref _arrival, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return pending.Answer.Task;
    }

    public async ValueTask DisposeAsync()
    {
        Volatile.Write(ref _retired, true);
        _waiting.Writer.TryComplete();
        await _loop;
    }

    private async Task RunAsync()
    {
        var batch = new List<Pending>();
        int answered = 0;
        while (await _waiting.Reader.WaitToReadAsync())
        {
            await LingerAsync(answered);
            batch.Clear();
            int texts = 0;
            while (_waiting.Reader.TryPeek(out var next) && (batch.Count == 0 || texts + next.Texts.Count <= _maxBatchTexts))
            {
                _waiting.Reader.TryRead(out _);
                Interlocked.Add(ref _queuedTexts, -next.Texts.Count);
                if (next.Cancelled.IsCancellationRequested)
                {
                    next.Answer.TrySetCanceled(next.Cancelled);
                    continue;
                }
                if (_time.GetUtcNow() >= next.Deadline)
                {
                    // Its caller has stopped waiting: computing it would only delay the others.
                    next.Answer.TrySetException(new TimeoutException());
                    continue;
                }
                batch.Add(next);
                texts += next.Texts.Count;
            }
            if (batch.Count == 0) continue;
            answered = texts;
            try
            {
                Interlocked.Increment(ref _batches);
                var predictions = await _predict(batch.SelectMany(p => p.Texts).ToArray(), CancellationToken.None);
                // Returns are counted from before the first answer goes out: its client may ask again before the last one does.
                Volatile.Write(ref _arrivedSinceBatch, 0);
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
                Volatile.Write(ref _arrivedSinceBatch, 0);
            }
            catch (Exception e)
            {
                Volatile.Write(ref _arrivedSinceBatch, 0);
                foreach (var p in batch) p.Answer.TrySetException(e);
            }
        }
    }

    /// <summary>
    /// Waits up to the linger for the texts of the last batch (<paramref name="answered"/>) that have not
    /// come back since it was answered, or until a full batch waits.
    /// </summary>
    private async Task LingerAsync(int answered)
    {
        if (answered == 0 || _linger <= TimeSpan.Zero) return;
        long started = _time.GetTimestamp();
        while (true)
        {
            var arrival = Volatile.Read(ref _arrival).Task;
            int queued = Volatile.Read(ref _queuedTexts);
            int target = Math.Min(_maxBatchTexts, queued + Math.Max(0, answered - Volatile.Read(ref _arrivedSinceBatch)));
            var remaining = _linger - _time.GetElapsedTime(started);
            if (queued >= target || remaining <= TimeSpan.Zero) return;
            await Task.WhenAny(arrival, Task.Delay(remaining, _time));
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

    private sealed record Pending(IReadOnlyList<string> Texts, DateTimeOffset Deadline, CancellationToken Cancelled)
    {
        public TaskCompletionSource<IReadOnlyList<SamplePrediction>> Answer { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}

/// <summary>The model was replaced or unloaded while the query reached it; the catalog has the one to use.</summary>
internal sealed class ModelRetiredException() : Exception("The model was replaced or unloaded.");
