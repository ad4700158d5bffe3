using System.Threading.Channels;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Tensors;
using MoEMesh.Settings;

namespace MoEMesh.Experts.Runtime;

/// <summary>
/// Runs expert requests in batches on <see cref="BatchingOptions.ConcurrentBatches"/> compute loops, each on a thread of its own.
/// Callers queue forward and backward requests from any thread; the loops (started by
/// <see cref="RunAsync"/>) group requests for the same expert and pass, run a batch when it is full or its
/// oldest request has waited long enough, and answer each caller with its own rows. Different experts'
/// batches run side by side; an expert runs one batch at a time, so its weights are never read and
/// updated at once. An exception fails exactly the requests of its batch; the loops go on serving.
/// </summary>
public sealed partial class BatchingRuntime
{
    private readonly Channel<WorkItem> _inbox = Channel.CreateUnbounded<WorkItem>();
    /// <summary>Experts with a batch running; guarded, like the scheduler, by locking the scheduler.</summary>
    private readonly HashSet<ExpertBackend> _running = [];
    /// <summary>Completed (and replaced) when a request arrives: what idle loops wait for.</summary>
    private TaskCompletionSource _wake = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly BatchingOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly BatchScheduler _scheduler;
    private readonly Histogram<int>? _batchRows;
    private long _batchesRun;

    /// <summary>Name of the meter.</summary>
    public const string MeterName = "MoEMesh.Experts";

    /// <summary>Creates the runtime; nothing runs until <see cref="RunAsync"/>.</summary>
    /// <param name="options">Batch limits.</param>
    /// <param name="time">The clock.</param>
    /// <param name="logger">Logs batches (Trace) and failed batches.</param>
    /// <param name="meters">Where the rows of each batch run are measured (meter <see cref="MeterName"/>); not measured when null.</param>
    public BatchingRuntime(BatchingOptions options, TimeProvider time, ILogger<BatchingRuntime>? logger = null, IMeterFactory? meters = null)
    {
        SettingsValidation.ThrowIfInvalid(options);
        _options = options;
        _time = time;
        _logger = logger ?? (ILogger)NullLogger.Instance;
        _scheduler = new BatchScheduler(options, time);
        _batchRows = meters?.Create(MeterName).CreateHistogram("moemesh.experts.batch.rows", "{row}",
            "Rows of each batch an expert ran, by kind (forward, backward, input_gradient): the requests queued together", tags: null,
            new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096] });
    }

    /// <summary>Batches run so far.</summary>
    public long BatchesRun => Interlocked.Read(ref _batchesRun);

    /// <summary>How many batches of different experts may run at once.</summary>
    public int ConcurrentBatches => _options.ConcurrentBatches ?? 1;

    /// <summary>Queues a forward pass over <paramref name="input"/>; the caller owns the returned tensor.</summary>
    /// <exception cref="ArgumentException">The input does not match the expert's schema or exceeds MaxBatchRows.</exception>
    public Task<Tensor> ForwardAsync(ExpertBackend backend, Tensor input, CancellationToken cancellationToken) =>
        Submit(backend, BatchKind.Forward, input, null, cancellationToken);

    /// <summary>Queues a backward pass (with an optimizer step); returns the input gradient.</summary>
    /// <exception cref="ArgumentException">A tensor does not match the expert's schema or exceeds MaxBatchRows.</exception>
    public Task<Tensor> BackwardAsync(ExpertBackend backend, Tensor input, Tensor outputGradient, CancellationToken cancellationToken)
    {
        backend.Schema.RequireOutputGradient(outputGradient, input.Rows, backend.Name);
        return Submit(backend, BatchKind.Backward, input, outputGradient, cancellationToken);
    }

    /// <summary>Queues a backward pass for the input gradient only: no optimizer step, the weights stay as they are.</summary>
    /// <exception cref="ArgumentException">A tensor does not match the expert's schema or exceeds MaxBatchRows.</exception>
    public Task<Tensor> InputGradientAsync(ExpertBackend backend, Tensor input, Tensor outputGradient, CancellationToken cancellationToken)
    {
        backend.Schema.RequireOutputGradient(outputGradient, input.Rows, backend.Name);
        return Submit(backend, BatchKind.InputGradient, input, outputGradient, cancellationToken);
    }

    /// <summary>
    /// The compute loops; returns when <paramref name="stoppingToken"/> is cancelled and every running
    /// batch has ended, failing requests still queued with <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken)
    {
        try
        {
            // Dedicated threads: a batch is seconds of CPU at most, but the thread pool's few threads (one per
            // core) serve every socket; batches holding them would delay all the node's traffic.
            await Task.WhenAll(Enumerable.Range(0, ConcurrentBatches).Select(n => Task.Factory.StartNew(() => Loop(n, stoppingToken),
                CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
        }
        finally
        {
            _inbox.Writer.TryComplete();
            lock (_scheduler)
            {
                DrainInbox();
                foreach (var item in _scheduler.DrainAll())
                    item.Completion.TrySetCanceled(stoppingToken);
            }
        }
    }

    /// <summary>
    /// One compute loop, on a thread of its own: takes the next due batch of an expert no other loop is
    /// running, runs it, and waits for work when there is none. No wake-up is lost: a loop takes the wake
    /// signal before it looks at the queues, every request completes the signal after it is queued, and the
    /// loop that ends an expert's batch looks for that expert's next batch itself.
    /// </summary>
    private void Loop(int number, CancellationToken stoppingToken)
    {
        Thread.CurrentThread.Name = $"moemesh batches {number}";
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var wake = Volatile.Read(ref _wake).Task;
                ExpertBatch? batch;
                long? due = null;
                lock (_scheduler)
                {
                    DrainInbox();
                    if (_scheduler.TryTakeBatch(_time.GetTimestamp(), out batch, _running)) _running.Add(batch.Backend);
                    else due = _scheduler.NextDue(_running);
                }
                if (batch is null)
                {
                    WaitForWorkAsync(due, wake, stoppingToken).GetAwaiter().GetResult();
                    continue;
                }
                (TimeSpan Elapsed, long AnsweredAt) ran = (TimeSpan.Zero, _time.GetTimestamp());
                try
                {
                    ran = Execute(batch);
                }
                finally
                {
                    lock (_scheduler)
                    {
                        _running.Remove(batch.Backend);
                        _scheduler.Ran(batch, ran.Elapsed, ran.AnsweredAt);
                    }
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private Task<Tensor> Submit(ExpertBackend backend, BatchKind kind, Tensor input, Tensor? outputGradient, CancellationToken cancellationToken)
    {
        backend.Schema.RequireInput(input, backend.Name);
        if (input.Rows > _options.MaxBatchRows)
            throw new ArgumentException($"Request for expert {backend.Name} has {input.Rows} rows; the batch limit is {_options.MaxBatchRows}.");
        var item = new WorkItem(backend, kind, input, outputGradient, _time.GetTimestamp());
        if (cancellationToken.CanBeCanceled)
        {
            var registration = cancellationToken.Register(static state =>
            {
                var (completion, token) = ((TaskCompletionSource<Tensor>, CancellationToken))state!;
                completion.TrySetCanceled(token);
            }, (item.Completion, cancellationToken));
            item.Completion.Task.ContinueWith(static (_, r) => ((CancellationTokenRegistration)r!).Dispose(), registration,
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
        if (_inbox.Writer.TryWrite(item)) Wake();
        else item.Completion.TrySetException(new ObjectDisposedException(nameof(BatchingRuntime), "The batching runtime has stopped."));
        return item.Completion.Task;
    }

    /// <summary>Moves arrived requests into the scheduler; the caller holds the scheduler's lock.</summary>
    private void DrainInbox()
    {
        while (_inbox.Reader.TryRead(out var item)) _scheduler.Add(item);
    }

    /// <summary>Wakes the loops that wait for work.</summary>
    private void Wake() =>
        Interlocked.Exchange(ref _wake, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Waits until <paramref name="wake"/> completes or the oldest request becomes due, whichever is first.</summary>
    private async Task WaitForWorkAsync(long? due, Task wake, CancellationToken stoppingToken)
    {
        if (due is null)
        {
            await wake.WaitAsync(stoppingToken);
            return;
        }
        var delay = _time.GetElapsedTime(_time.GetTimestamp(), due.Value);
        if (delay <= TimeSpan.Zero) return;
        // Timers fire in whole milliseconds: a shorter wait would wake early and loop until it is due.
        if (delay < TimeSpan.FromMilliseconds(1)) delay = TimeSpan.FromMilliseconds(1);
        using var timerStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var timer = Task.Delay(delay, _time, timerStop.Token);
        await Task.WhenAny(wake, timer);
        await timerStop.CancelAsync();
        stoppingToken.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Runs a batch and answers its requests (each failed with the batch's exception if it throws); returns
    /// how long it took and when its answers started to go out.
    /// </summary>
    private (TimeSpan Elapsed, long AnsweredAt) Execute(ExpertBatch batch)
    {
        int rows = batch.Rows;
        var started = _time.GetTimestamp();
        long answeredAt = started;
        Tensor? input = null, gradient = null, result = null;
        try
        {
            input = Concatenate(batch.Items, i => i.Input, rows);
            if (batch.Kind == BatchKind.Forward)
            {
                result = batch.Backend.Forward(input);
            }
            else
            {
                gradient = Concatenate(batch.Items, i => i.OutputGradient!, rows);
                result = batch.Kind == BatchKind.Backward ? batch.Backend.Backward(input, gradient) : batch.Backend.InputGradient(input, gradient);
            }
            answeredAt = _time.GetTimestamp();
            if (Split(batch.Items, result)) result = null;
            Interlocked.Increment(ref _batchesRun);
            _batchRows?.Record(rows, new KeyValuePair<string, object?>("kind", KindName(batch.Kind)));
            LogBatch(_logger, batch.Backend.Name, batch.Kind, batch.Items.Count, rows, _time.GetElapsedTime(started));
        }
        catch (Exception e)
        {
            answeredAt = _time.GetTimestamp();
            LogBatchFailed(_logger, e, batch.Backend.Name, batch.Kind, batch.Items.Count, rows);
            var failure = new ExpertExecutionException(batch.Backend.Name, batch.Kind, batch.Items.Count, rows, e);
            foreach (var item in batch.Items) item.Completion.TrySetException(failure);
        }
        finally
        {
            if (batch.Items.Count > 1)
            {
                input?.Dispose();
                gradient?.Dispose();
            }
            result?.Dispose();
        }
        return (_time.GetElapsedTime(started, answeredAt), answeredAt);
    }

    /// <summary>The kind as the batch-rows metric labels it.</summary>
    private static string KindName(BatchKind kind) => kind switch
    {
        BatchKind.Forward => "forward",
        BatchKind.Backward => "backward",
        _ => "input_gradient",
    };

    /// <summary>Stacks the requests' tensors into one batch; a single request's tensor is used as it is.</summary>
    private static Tensor Concatenate(IReadOnlyList<WorkItem> items, Func<WorkItem, Tensor> select, int rows)
    {
        if (items.Count == 1) return select(items[0]);
        var first = select(items[0]);
        var batch = Tensor.Uninitialized(first.Shape.WithRows(rows));
        int offset = 0;
        foreach (var item in items)
        {
            var t = select(item);
            t.Span.CopyTo(batch.Span.Slice(offset));
            offset += t.Length;
        }
        return batch;
    }

    /// <summary>
    /// Gives each request its rows of the result: a lone request gets the result itself (returns true,
    /// ownership passed on), several get a copy each.
    /// </summary>
    private static bool Split(IReadOnlyList<WorkItem> items, Tensor result)
    {
        if (items.Count == 1) return items[0].Completion.TrySetResult(result);
        int row = 0;
        foreach (var item in items)
        {
            using var view = result.RowSlice(row, item.Rows);
            var rows = view.Clone();
            if (!item.Completion.TrySetResult(rows)) rows.Dispose();
            row += item.Rows;
        }
        return false;
    }

    [LoggerMessage(EventId = 10, Level = LogLevel.Trace, Message = "Ran {Kind} of {ExpertUid}: {Requests} requests, {Rows} rows in {Elapsed}")]
    private static partial void LogBatch(ILogger logger, string expertUid, BatchKind kind, int requests, int rows, TimeSpan elapsed);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "{Kind} of {ExpertUid} failed for {Requests} requests ({Rows} rows)")]
    private static partial void LogBatchFailed(ILogger logger, Exception exception, string expertUid, BatchKind kind, int requests, int rows);
}
