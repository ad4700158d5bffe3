using MoEMesh.Protocol.Addressing;
using MoEMesh.Routing.Directory;

namespace MoEMesh.Routing.Gating;

/// <summary>An expert found for a sample, with its gate score.</summary>
public readonly record struct ScoredExpert(ExpertUid Uid, float Score);

/// <summary>
/// Finds each sample's k best live experts on a grid without scoring every uid. Best-first search over
/// prefixes: a prefix's bound is the score of its coordinates so far plus the best score each remaining
/// dimension could add, which no uid below it can beat. The open prefix with the highest bound is
/// expanded next (its live children come from the DHT's prefix entries); when the highest bound belongs to
/// a complete uid, that uid is the best remaining one. So the result is exactly the top k of the live
/// experts (a greedy beam over partial sums is not: a strong first coordinate may have only weak live
/// children). Each round expands up to <c>beamWidth</c> prefixes per sample, and all samples' prefixes go
/// to the DHT in one request, so a batch costs about depth × (rounds per level) DHT round trips.
/// With a <c>usable</c> check (a layer that needs one kind of expert), a complete uid is emitted only once
/// the check has accepted it: the uids at the head of the samples' queues are checked together, one
/// lookup per round, and a rejected uid is dropped, so the result is the top k of the usable experts.
/// </summary>
public sealed class BeamSearch(ExpertDirectory directory)
{
    /// <summary>The <paramref name="k"/> best live experts for each sample, best first.</summary>
    /// <param name="grid">The grid.</param>
    /// <param name="scores">Per sample, per dimension, a score for each coordinate.</param>
    /// <param name="k">Experts wanted per sample.</param>
    /// <param name="beamWidth">Prefixes expanded per sample per round (more: fewer rounds, more lookups).</param>
    /// <param name="cancellationToken">Stops the search.</param>
    /// <param name="usable">Which of the given uids may be used (null: every live uid); asked once per round for the uids waiting at the head.</param>
    /// <param name="stop">When it fires the search ends with what it has found so far (each sample's best, possibly fewer than k).</param>
    public async Task<IReadOnlyList<ScoredExpert>[]> FindAsync(ExpertGrid grid, IReadOnlyList<IReadOnlyList<float[]>> scores, int k, int beamWidth, CancellationToken cancellationToken,
        Func<IReadOnlyCollection<ExpertUid>, CancellationToken, Task<IReadOnlySet<ExpertUid>>>? usable = null, CancellationToken stop = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(beamWidth, 1);
        var searches = scores.Select((s, i) => new SampleSearch(grid, Check(grid, s, i), k)).ToArray();
        var verdicts = usable is null ? null : new Dictionary<ExpertUid, bool>();
        using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stop);
        try
        {
            await SearchAsync(searches, verdicts, beamWidth, usable, either.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            // Out of time: what was found stands.
        }
        return searches.Select(s => s.Found).ToArray();
    }

    private async Task SearchAsync(SampleSearch[] searches, Dictionary<ExpertUid, bool>? verdicts, int beamWidth,
        Func<IReadOnlyCollection<ExpertUid>, CancellationToken, Task<IReadOnlySet<ExpertUid>>>? usable, CancellationToken cancellationToken)
    {
        while (true)
        {
            var wanted = new HashSet<ExpertPrefix>();
            var check = new HashSet<ExpertUid>();
            foreach (var search in searches)
            {
                search.EmitReady(verdicts, check);
                if (!search.Done && !search.Verifying) search.TakeFrontier(beamWidth, wanted);
            }
            if (wanted.Count == 0 && check.Count == 0) break;
            var successors = wanted.Count == 0
                ? Task.FromResult<IReadOnlyDictionary<ExpertPrefix, ExpertSuccessors>>(new Dictionary<ExpertPrefix, ExpertSuccessors>())
                : directory.FindSuccessorsAsync(wanted, cancellationToken);
            if (check.Count > 0)
            {
                var accepted = await usable!(check, cancellationToken);
                foreach (var uid in check) verdicts![uid] = accepted.Contains(uid);
            }
            var found = await successors;
            foreach (var search in searches)
            {
                search.Resolve(verdicts);
                search.Expand(found);
            }
        }
    }

    private static IReadOnlyList<float[]> Check(ExpertGrid grid, IReadOnlyList<float[]> scores, int sample)
    {
        if (scores.Count != grid.Sizes.Count)
            throw new ArgumentException($"Sample {sample} has scores for {scores.Count} dimensions; grid {grid.Name} has {grid.Sizes.Count}.");
        for (int d = 0; d < scores.Count; d++)
        {
            if (scores[d].Length != grid.Sizes[d])
                throw new ArgumentException($"Sample {sample}, dimension {d}: {scores[d].Length} scores for {grid.Sizes[d]} coordinates.");
            if (scores[d].Any(v => !float.IsFinite(v))) throw new ArgumentException($"Sample {sample}, dimension {d}: scores must be finite.");
        }
        return scores;
    }

    /// <summary>One sample's search state.</summary>
    private sealed class SampleSearch
    {
        private readonly ExpertGrid _grid;
        private readonly IReadOnlyList<float[]> _scores;
        private readonly float[] _bestRemaining;
        private readonly int _k;
        private readonly PriorityQueue<Open, (float Bound, string Tie)> _open = new(Comparer<(float Bound, string Tie)>.Create(
            (a, b) => a.Bound != b.Bound ? b.Bound.CompareTo(a.Bound) : string.CompareOrdinal(a.Tie, b.Tie)));
        private readonly List<Open> _expanding = [];
        private readonly List<Open> _verifying = [];
        private readonly List<ScoredExpert> _found = [];

        public SampleSearch(ExpertGrid grid, IReadOnlyList<float[]> scores, int k)
        {
            _grid = grid;
            _scores = scores;
            _k = k;
            _bestRemaining = new float[grid.Sizes.Count + 1];
            for (int d = grid.Sizes.Count - 1; d >= 0; d--) _bestRemaining[d] = _bestRemaining[d + 1] + scores[d].Max();
            Push(new Open(grid.Root, null, 0, 0f));
        }

        public IReadOnlyList<ScoredExpert> Found => _found;

        public bool Done => _found.Count >= _k || (_open.Count == 0 && _verifying.Count == 0);

        /// <summary>Whether complete uids at the head wait for the usable check.</summary>
        public bool Verifying => _verifying.Count > 0;

        /// <summary>
        /// Emits complete uids while one holds the highest bound: nothing left can beat it. With
        /// <paramref name="verdicts"/>, a uid not yet judged stops the emission: it and the complete uids right
        /// behind it (as many as are still wanted) go to <paramref name="check"/> and wait for <see cref="Resolve"/>.
        /// </summary>
        public void EmitReady(Dictionary<ExpertUid, bool>? verdicts, HashSet<ExpertUid> check)
        {
            while (_found.Count < _k && _verifying.Count == 0 && _open.TryPeek(out var top, out _) && top.Uid is { } uid)
            {
                bool? verdict = verdicts is null ? true : verdicts.TryGetValue(uid, out bool usable) ? usable : null;
                if (verdict is { } use)
                {
                    _open.Dequeue();
                    if (use) _found.Add(new ScoredExpert(uid, top.Partial));
                    continue;
                }
                while (_verifying.Count < _k - _found.Count && _open.TryPeek(out var next, out _) && next.Uid is { } u && !verdicts!.ContainsKey(u))
                {
                    _verifying.Add(_open.Dequeue());
                    check.Add(u);
                }
            }
        }

        /// <summary>Returns the checked uids that may be used to the queue (in bound order, so they are emitted next); drops the others.</summary>
        public void Resolve(Dictionary<ExpertUid, bool>? verdicts)
        {
            foreach (var open in _verifying)
                if (verdicts![open.Uid!.Value]) Push(open);
            _verifying.Clear();
        }

        /// <summary>Takes up to <paramref name="width"/> open prefixes, best bound first, to expand.</summary>
        public void TakeFrontier(int width, HashSet<ExpertPrefix> wanted)
        {
            var complete = new List<Open>();
            while (_expanding.Count < width && _open.TryDequeue(out var next, out _))
            {
                if (next.Uid is not null)
                {
                    complete.Add(next);
                    continue;
                }
                _expanding.Add(next);
                wanted.Add(next.Prefix);
            }
            foreach (var c in complete) Push(c);
        }

        public void Expand(IReadOnlyDictionary<ExpertPrefix, ExpertSuccessors> successors)
        {
            foreach (var open in _expanding)
            {
                if (!successors.TryGetValue(open.Prefix, out var found)) continue;
                int depth = open.Depth;
                foreach (var (coordinate, below) in found.Children)
                {
                    if (coordinate >= _grid.Sizes[depth]) continue;
                    float partial = open.Partial + _scores[depth][coordinate];
                    if (depth + 1 == _grid.Sizes.Count)
                    {
                        var uid = open.Prefix.Uid(coordinate);
                        if (uid == below) Push(new Open(open.Prefix, uid, depth + 1, partial));
                    }
                    else
                    {
                        Push(new Open(open.Prefix.Child(coordinate), null, depth + 1, partial));
                    }
                }
            }
            _expanding.Clear();
        }

        private void Push(Open open) =>
            _open.Enqueue(open, (open.Uid is null ? open.Partial + _bestRemaining[open.Depth] : open.Partial, open.Uid?.Value ?? open.Prefix.Value));
    }

    /// <summary>An open prefix (Uid null) or a complete uid, with the score of its coordinates so far.</summary>
    private sealed record Open(ExpertPrefix Prefix, ExpertUid? Uid, int Depth, float Partial);
}
