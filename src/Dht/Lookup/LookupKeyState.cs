using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;

namespace MoEMesh.Dht.Lookup;

/// <summary>
/// One key's progress in a lookup: candidates sorted by distance to the target, each fresh, being asked,
/// slow, answered or failed; the window is the k nearest candidates that have not failed and are not slow.
/// Each candidate remembers which answering nodes named it. A node whose named contacts mostly fail (at
/// least <see cref="DiscreditAfter"/> failures, and more than twice as many as answers) is discredited: the contacts
/// only it named leave the window and what it names later is ignored. So one peer answering with made-up
/// contacts nearer the target than any real node costs a lookup a few failed calls, not all of them.
/// </summary>
internal sealed class LookupKeyState
{
    /// <summary>Failed contacts a node must have named before it can be discredited.</summary>
    public const int DiscreditAfter = 3;

    private readonly List<Candidate> _sorted = [];
    private readonly Dictionary<NodeId, Candidate> _byId = [];
    private readonly Dictionary<NodeId, Standing> _namers = [];
    private readonly int _k;
    private NodeId? _windowEdge;
    private bool _windowDirty = true;
    private int _maxHop;
    private int? _foundAtHop;

    public LookupKeyState(FindQuery query, int k, IEnumerable<DhtContact> seeds)
    {
        Query = query;
        _k = k;
        Merger = new RecordMerger(query.Key ?? "");
        foreach (var seed in seeds) Offer(seed, hop: 1, failed: false, namedBy: null);
    }

    public FindQuery Query { get; }

    public RecordMerger Merger { get; }

    /// <summary>Requests carrying this key that are in flight and not yet slow (they hold the alpha slots).</summary>
    public int InFlight { get; set; }

    public int Rpcs { get; set; }

    public bool Done { get; set; }

    /// <summary>
    /// Adds a contact not seen before, named by the answering node <paramref name="namedBy"/> (null for our
    /// own table); a contact seen before only records who else named it. Ignored when the namer is discredited.
    /// </summary>
    public void Offer(DhtContact contact, int hop, bool failed, NodeId? namedBy)
    {
        if (namedBy is { } namer && _namers.TryGetValue(namer, out var standing) && standing.Discredited) return;
        if (_byId.TryGetValue(contact.Id, out var known))
        {
            if (namedBy is { } also && !known.NamedBy.Contains(also)) known.NamedBy.Add(also);
            return;
        }
        var candidate = new Candidate(contact, contact.Id.DistanceTo(Query.Target), hop) { State = failed ? CandidateState.Failed : CandidateState.Fresh };
        if (namedBy is { } by) candidate.NamedBy.Add(by);
        int at = _sorted.BinarySearch(candidate, Candidate.ByDistance);
        _sorted.Insert(at < 0 ? ~at : at, candidate);
        _byId[contact.Id] = candidate;
        _windowDirty = true;
    }

    public Candidate this[NodeId id] => _byId[id];

    /// <summary>The nearest fresh candidate inside the window, or null.</summary>
    public Candidate? NextFresh() => Window().FirstOrDefault(c => c.State == CandidateState.Fresh);

    /// <summary>Whether a candidate inside the window has been asked and has not answered or failed yet.</summary>
    public bool AwaitsWindow() => Window().Any(c => c.State == CandidateState.Asked);

    /// <summary>Whether <paramref name="id"/> is a fresh candidate inside the window.</summary>
    public bool IsFreshInWindow(NodeId id)
    {
        if (!_byId.TryGetValue(id, out var c) || c.State != CandidateState.Fresh) return false;
        if (_windowDirty) UpdateWindowEdge();
        return _windowEdge is not { } edge || c.Distance.CompareTo(edge) <= 0;
    }

    public void MarkAsked(Candidate candidate)
    {
        candidate.State = CandidateState.Asked;
        InFlight++;
        Rpcs++;
    }

    public void MarkAnswered(Candidate candidate)
    {
        if (candidate.State == CandidateState.Slow)
        {
            _windowDirty = true;
            Judge(candidate, answered: 1, failed: -1); // it was counted as failed when it turned slow
        }
        else
        {
            Judge(candidate, answered: 1, failed: 0);
        }
        candidate.State = CandidateState.Answered;
        _maxHop = Math.Max(_maxHop, candidate.Hop);
    }

    public void MarkFailed(Candidate candidate)
    {
        if (candidate.State != CandidateState.Slow) Judge(candidate, answered: 0, failed: 1);
        candidate.State = CandidateState.Failed;
        _windowDirty = true;
    }

    /// <summary>An asked candidate has not answered for SlowRpcThreshold: presumed failed until it answers.</summary>
    public void MarkSlow(Candidate candidate)
    {
        if (candidate.State != CandidateState.Asked) return;
        Judge(candidate, answered: 0, failed: 1);
        candidate.State = CandidateState.Slow;
        _windowDirty = true;
    }

    /// <summary>Whether <paramref name="namer"/>'s answers are no longer believed.</summary>
    public bool IsDiscredited(NodeId namer) => _namers.TryGetValue(namer, out var standing) && standing.Discredited;

    /// <summary>Counts how a candidate turned out against every node that named it; discredits those whose contacts mostly fail.</summary>
    private void Judge(Candidate candidate, int answered, int failed)
    {
        foreach (var namer in candidate.NamedBy)
        {
            if (!_namers.TryGetValue(namer, out var standing)) _namers[namer] = standing = new Standing();
            standing.Answered += answered;
            standing.Failed += failed;
            if (!standing.Discredited && standing.Failed >= DiscreditAfter && standing.Failed > 2 * standing.Answered) Discredit(standing);
        }
    }

    /// <summary>Fresh candidates that only discredited nodes named leave the window, as if they had failed.</summary>
    private void Discredit(Standing standing)
    {
        standing.Discredited = true;
        foreach (var c in _sorted)
        {
            if (c.State == CandidateState.Fresh && c.NamedBy.Count > 0 && c.NamedBy.TrueForAll(IsDiscredited))
            {
                c.State = CandidateState.Failed;
                _windowDirty = true;
            }
        }
    }

    /// <summary>Takes a valid record found at <paramref name="hop"/>.</summary>
    public void AddRecord(DhtRecord record, int hop)
    {
        Merger.Add(record);
        _foundAtHop ??= hop;
    }

    public LookupResult ToResult(LookupMode mode)
    {
        var nearest = _sorted.Where(c => c.State == CandidateState.Answered).Take(_k).Select(c => c.Contact).ToArray();
        int rounds = mode == LookupMode.GetFirst && _foundAtHop is { } found ? found : _maxHop;
        return new LookupResult(nearest, Merger.ToValue(), rounds, Rpcs);
    }

    /// <summary>The window: the k nearest candidates that are not out (failed or slow), nearest first.</summary>
    private IEnumerable<Candidate> Window() => _sorted.Where(c => !c.IsOut).Take(_k);

    private void UpdateWindowEdge()
    {
        var window = Window().ToList();
        _windowEdge = window.Count == _k ? window[^1].Distance : null;
        _windowDirty = false;
    }

    /// <summary>How the contacts one answering node named have turned out so far.</summary>
    private sealed class Standing
    {
        public int Answered;
        public int Failed;
        public bool Discredited;
    }

    internal enum CandidateState
    {
        Fresh,
        Asked,

        /// <summary>Asked, unanswered past SlowRpcThreshold: outside the window unless it answers after all.</summary>
        Slow,
        Answered,
        Failed,
    }

    internal sealed class Candidate(DhtContact contact, NodeId distance, int hop)
    {
        public static readonly IComparer<Candidate> ByDistance = Comparer<Candidate>.Create((a, b) => a.Distance.CompareTo(b.Distance));

        public DhtContact Contact { get; } = contact;

        public NodeId Distance { get; } = distance;

        /// <summary>1 for contacts from our own table, n + 1 for contacts learned from a node at hop n.</summary>
        public int Hop { get; } = hop;

        /// <summary>The answering nodes that named this contact (empty for our own table's).</summary>
        public List<NodeId> NamedBy { get; } = [];

        public CandidateState State { get; set; }

        /// <summary>Not counted in the window: failed, or presumed failed while slow.</summary>
        public bool IsOut => State is CandidateState.Failed or CandidateState.Slow;
    }
}
