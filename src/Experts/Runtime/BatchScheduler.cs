namespace MoEMesh.Experts.Runtime;

/// <summary>
/// The batching decision, free of threads and clocks so it can be tested step by step: a queue per
/// (expert, pass); a queue is ready when it holds <see cref="BatchingOptions.MaxBatchRows"/> rows or its
/// oldest request has waited <see cref="BatchingOptions.MaxWait"/>; among ready queues the one with the
/// oldest request goes first, so no expert starves another.
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

    /// <summary>Takes the next batch that is due at <paramref name="now"/>, if any.</summary>
    public bool TryTakeBatch(long now, out ExpertBatch batch)
    {
        PendingQueue? best = null;
        foreach (var queue in _queues.Values)
        {
            queue.DropFinishedHead();
            if (queue.Count == 0 || !IsReady(queue, now)) continue;
            if (best is null || queue.Oldest.EnqueuedAt < best.Oldest.EnqueuedAt) best = queue;
        }
        if (best is null)
        {
            batch = null!;
            return false;
        }
        var head = best.Oldest;
        batch = new ExpertBatch(head.Backend, head.Kind, best.Take(_options.MaxBatchRows));
        return true;
    }

    /// <summary>When the oldest waiting request reaches its maximum wait; null when nothing waits.</summary>
    public long? NextDue()
    {
        long? due = null;
        foreach (var queue in _queues.Values)
        {
            queue.DropFinishedHead();
            if (queue.Count == 0) continue;
            long at = queue.Oldest.EnqueuedAt + ToTimestampTicks(_options.MaxWait);
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

    private bool IsReady(PendingQueue queue, long now) =>
        queue.Rows >= _options.MaxBatchRows || _time.GetElapsedTime(queue.Oldest.EnqueuedAt, now) >= _options.MaxWait;

    private long ToTimestampTicks(TimeSpan span) => (long)(span.TotalSeconds * _time.TimestampFrequency);

    /// <summary>A FIFO of requests with their total rows.</summary>
    private sealed class PendingQueue
    {
        private readonly Queue<WorkItem> _items = new();

        public int Rows { get; private set; }

        public int Count => _items.Count;

        public WorkItem Oldest => _items.Peek();

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
