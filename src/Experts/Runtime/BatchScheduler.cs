namespace MoEMesh.Experts.Runtime;

/// <summary>
/// The batching decision, free of threads and clocks so it can be tested step by step: a queue per
/// (expert, pass); a queue is ready when it holds <see cref="BatchingOptions.MaxBatchRows"/> rows or its
/// oldest request has waited <see cref="BatchingOptions.MaxWait"/>, and, until as many requests have
/// arrived since its last batch was answered as that batch held, up to <see cref="BatchingOptions.Linger"/>
/// after that answer (at most a quarter of the batch's run time); among ready queues the one with the
/// oldest request goes first, so no expert starves another. An expert with a batch running (the caller
/// says which, <c>running</c>) is passed over until it finishes, so its weights are never read and updated at once.
/// </summary>
internal sealed class BatchScheduler
{
    private readonly Dictionary<(ExpertBackend, BatchKind), PendingQueue> _queues = [];
    private readonly BatchingOptions _options;
    private readonly TimeProvider _time;

    public BatchScheduler(BatchingOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
    }

    /// <summary>Rows waiting in every queue (answered or abandoned requests not counted once seen).</summary>
    public int PendingRows => _queues.Values.Sum(q => q.Rows);

    public void Add(WorkItem item)
    {
        var key = (item.Backend, item.Kind);
        if (!_queues.TryGetValue(key, out var queue)) _queues[key] = queue = new PendingQueue();
        queue.Enqueue(item);
    }

    /// <summary>Takes the next batch that is due at <paramref name="now"/>, if any, passing over experts that are <paramref name="running"/>.</summary>
    public bool TryTakeBatch(long now, out ExpertBatch batch, IReadOnlySet<ExpertBackend>? running = null)
    {
        PendingQueue? best = null;
        foreach (var ((backend, _), queue) in _queues)
        {
            queue.DropFinishedHead();
            if (queue.Count == 0 || running?.Contains(backend) == true || !IsReady(backend, queue, now)) continue;
            if (best is null || queue.Oldest.EnqueuedAt < best.Oldest.EnqueuedAt) best = queue;
        }
        if (best is null)
        {
            batch = null!;
            return false;
        }
        var head = best.Oldest;
        batch = new ExpertBatch(head.Backend, head.Kind, best.Take(_options.MaxBatchRows));
        best.LastBatchRequests = batch.Items.Count;
        return true;
    }

    /// <summary>
    /// Notes how long <paramref name="batch"/> ran and when its answers started to go out
    /// (<paramref name="answeredAt"/>): its callers' next requests arrive after that.
    /// </summary>
    public void Ran(ExpertBatch batch, TimeSpan elapsed, long answeredAt)
    {
        if (!_queues.TryGetValue((batch.Backend, batch.Kind), out var queue)) return;
        queue.LastRun = elapsed;
        queue.AnsweredAt = answeredAt;
    }

    /// <summary>When the oldest waiting request of an expert not <paramref name="running"/> reaches its maximum wait; null when none waits.</summary>
    public long? NextDue(IReadOnlySet<ExpertBackend>? running = null)
    {
        long? due = null;
        foreach (var ((backend, _), queue) in _queues)
        {
            queue.DropFinishedHead();
            if (queue.Count == 0 || running?.Contains(backend) == true) continue;
            long at = Due(backend, queue);
            if (due is null || at < due) due = at;
        }
        return due;
    }

    /// <summary>Removes and returns every waiting request (on shutdown).</summary>
    public List<WorkItem> DrainAll()
    {
        var all = _queues.Values.SelectMany(q => q.Take(int.MaxValue)).ToList();
        _queues.Clear();
        return all;
    }

    private bool IsReady(ExpertBackend backend, PendingQueue queue, long now) => queue.Rows >= _options.MaxBatchRows || now >= Due(backend, queue);

    /// <summary>
    /// When a queue's batch runs: once its oldest request has waited MaxWait; and, until as many requests
    /// have arrived for its expert since its last batch was answered as that batch held (its callers usually
    /// send again at once; a forward's callers may come back with a backward), not before Linger after that
    /// answer, at most a quarter of the batch's run time.
    /// </summary>
    private long Due(ExpertBackend backend, PendingQueue queue)
    {
        long due = queue.Oldest.EnqueuedAt + ToTimestampTicks(_options.MaxWait);
        if (ArrivedSince(backend, queue.AnsweredAt, queue.LastBatchRequests) >= queue.LastBatchRequests) return due;
        var linger = queue.LastRun / 4 < _options.Linger ? queue.LastRun / 4 : _options.Linger;
        return Math.Max(due, queue.AnsweredAt + ToTimestampTicks(linger));
    }

    /// <summary>Requests for <paramref name="backend"/>, of any pass, that arrived at or after <paramref name="at"/> (counted up to <paramref name="enough"/>).</summary>
    private int ArrivedSince(ExpertBackend backend, long at, int enough)
    {
        int arrived = 0;
        foreach (var kind in Kinds)
            if (arrived < enough && _queues.TryGetValue((backend, kind), out var queue)) arrived += queue.ArrivedSince(at, enough - arrived);
        return arrived;
    }

    private static readonly BatchKind[] Kinds = Enum.GetValues<BatchKind>();

    private long ToTimestampTicks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    /// <summary>A FIFO of requests with their total rows.</summary>
    private sealed class PendingQueue
    {
        private readonly Queue<WorkItem> _items = new();

        public int Rows { get; private set; }

        public int Count => _items.Count;

        public WorkItem Oldest => _items.Peek();

        /// <summary>Requests in the last batch taken from this queue (0 before the first).</summary>
        public int LastBatchRequests { get; set; }

        /// <summary>How long the last batch taken from this queue ran.</summary>
        public TimeSpan LastRun { get; set; }

        /// <summary>When the answers of the last batch started to go out.</summary>
        public long AnsweredAt { get; set; }

        /// <summary>Requests waiting that arrived at or after <paramref name="at"/> (counted up to <paramref name="enough"/>).</summary>
        public int ArrivedSince(long at, int enough)
        {
            int arrived = 0;
            foreach (var item in _items)
                if (item.EnqueuedAt >= at && ++arrived >= enough) break;
            return arrived;
        }

        public void Enqueue(WorkItem item)
        {
            _items.Enqueue(item);
            Rows += item.Rows;
        }

        public void DropFinishedHead()
        {
            while (_items.Count > 0 && _items.Peek().IsFinished) Rows -= _items.Dequeue().Rows;
        }

        /// <summary>Takes requests in arrival order while they fit in <paramref name="maxRows"/>; always at least one.</summary>
        public List<WorkItem> Take(int maxRows)
        {
            var taken = new List<WorkItem>();
            int rows = 0;
            while (_items.Count > 0)
            {
                var next = _items.Peek();
                if (!next.IsFinished && taken.Count > 0 && rows + next.Rows > maxRows) break;
                _items.Dequeue();
                Rows -= next.Rows;
                if (next.IsFinished) continue;
                taken.Add(next);
                rows += next.Rows;
            }
            return taken;
        }
    }
}
