using MoEMesh.Dht.Ids;
using MoEMesh.Dht.Records;
using MoEMesh.Dht.Rpc;

namespace MoEMesh.Dht.Lookup;

/// <summary>
/// One key's progress in a lookup: candidates sorted by distance to the target, each fresh, being asked,
/// slow, answered, failed or distrusted; the window is the k nearest candidates that are none of the last three.
/// Each candidate remembers which answering nodes named it. A node whose named contacts mostly fail (at
/// least <see cref="DiscreditAfter"/> failed or slow, and more than twice as many as answered) is
/// discredited: the fresh contacts only discredited nodes named are distrusted (out of the window), as is
/// what it names later. Credit comes back when late answers tip the balance (a loaded honest node is slow,
/// not lying), and a key does not finish while a discredited node's slow contacts may still answer. So one
/// peer answering with made-up contacts nearer the target than any real node costs a lookup a few calls
/// and one wait, not a call to every one of them.
/// </summary>
internal sealed class LookupKeyState
{
    /// <summary>Failed contacts a node must have named before it can be discredited.</summary>
    public const int DiscreditAfter = 4;

    private readonly List<Candidate> _sorted = [];
    private readonly Dictionary<NodeId, Candidate> _byId = [];
    private readonly Dictionary<NodeId, Standing> _namers = [];
    private readonly int _k;
    private NodeId? _windowEdge;
    private bool _windowDirty = true;
    private int _maxHop;
    private int? _foundAtHop;

    public LookupKeyState(FindQuery query, int k, IEnumerable<DhtContact> seeds, long maxRecordBytes = long.MaxValue)
    {
        Query = query;
        _k = k;
        Merger = new RecordMerger(query.Key ?? "", maxRecordBytes);
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
    /// own table), distrusted when that node is discredited; a contact seen before records who else named it.
    /// </summary>
    public void Offer(DhtContact contact, int hop, bool failed, NodeId? namedBy)
    {
        if (_byId.TryGetValue(contact.Id, out var known))
        {
            if (namedBy is not { } also || known.NamedBy.Contains(also)) return;
            known.NamedBy.Add(also);
            // A namer is judged on how its contact turned out, whenever it names it.
            Judge([also], Contribution(Counted.None), Contribution(known.Counted));
            if (known.State == CandidateState.Distrusted && !IsDiscredited(also)) Restore(known);
            return;
        }
        var state = failed ? CandidateState.Failed : namedBy is { } namer && IsDiscredited(namer) ? CandidateState.Distrusted : CandidateState.Fresh;
        var candidate = new Candidate(contact, contact.Id.DistanceTo(Query.Target), hop) { State = state };
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
        // A slow candidate was counted as failed when it turned slow; its answer takes that back.
        if (candidate.State == CandidateState.Slow) _windowDirty = true;
        Count(candidate, Counted.Answered);
        candidate.State = CandidateState.Answered;
        _maxHop = Math.Max(_maxHop, candidate.Hop);
    }

    public void MarkFailed(Candidate candidate)
    {
        Count(candidate, Counted.Failed);
        candidate.State = CandidateState.Failed;
        _windowDirty = true;
    }

    /// <summary>An asked candidate has not answered for SlowRpcThreshold: presumed failed until it answers.</summary>
    public void MarkSlow(Candidate candidate)
    {
        if (candidate.State != CandidateState.Asked) return;
        Count(candidate, Counted.Slow);
        candidate.State = CandidateState.Slow;
        _windowDirty = true;
    }

    /// <summary>
    /// Whether a distrusted candidate that would be inside the window may still come back: a node that
    /// named it has slow contacts, whose answers could give it back its credit.
    /// </summary>
    public bool AwaitsVerdict()
    {
        if (!_namers.Values.Any(n => n.Discredited && n.Slow > 0)) return false;
        if (_windowDirty) UpdateWindowEdge();
        return _sorted.Any(c => c.State == CandidateState.Distrusted && (_windowEdge is not { } edge || c.Distance.CompareTo(edge) < 0)
            && c.NamedBy.Exists(n => _namers.TryGetValue(n, out var standing) && standing.Slow > 0));
    }

    /// <summary>Times a node is asked again for a key's records it left out of its answers.</summary>
    public const int MaxAskAgain = 2;

    /// <summary>
    /// <paramref name="candidate"/> answered but left this key's records out (its reply was full): it is
    /// asked again, up to <see cref="MaxAskAgain"/> times.
    /// </summary>
    public void AskAgain(Candidate candidate)
    {
        if (candidate.AskedAgain >= MaxAskAgain) return;
        candidate.AskedAgain++;
        candidate.State = CandidateState.Fresh;
        _windowDirty = true;
    }

    /// <summary>Whether <paramref name="namer"/>'s answers are not believed (now).</summary>
    public bool IsDiscredited(NodeId namer) => _namers.TryGetValue(namer, out var standing) && standing.Discredited;

    /// <summary>How a candidate's outcome counts for each node that named it: (answered, failed, slow).</summary>
    private static (int Answered, int Failed, int Slow) Contribution(Counted counted) => counted switch
    {
        Counted.Answered => (1, 0, 0),
        Counted.Failed => (0, 1, 0),
        Counted.Slow => (0, 1, 1),
        _ => (0, 0, 0),
    };

    /// <summary>Moves a candidate's counted outcome to <paramref name="to"/>, for every node that named it (once per candidate, however often it is asked).</summary>
    private void Count(Candidate candidate, Counted to)
    {
        if (candidate.Counted == to) return;
        Judge(candidate.NamedBy, Contribution(candidate.Counted), Contribution(to));
        candidate.Counted = to;
    }

    /// <summary>Replaces one contribution by another for <paramref name="namers"/>, and updates their credit and the candidates they named.</summary>
    private void Judge(List<NodeId> namers, (int Answered, int Failed, int Slow) from, (int Answered, int Failed, int Slow) to)
    {
        bool changed = false;
        foreach (var namer in namers)
        {
            if (!_namers.TryGetValue(namer, out var standing)) _namers[namer] = standing = new Standing();
            standing.Answered += to.Answered - from.Answered;
            standing.Failed += to.Failed - from.Failed;
            standing.Slow += to.Slow - from.Slow;
            bool discredited = standing.Failed >= DiscreditAfter && standing.Failed > 2 * standing.Answered;
            changed |= discredited != standing.Discredited;
            standing.Discredited = discredited;
        }
        if (!changed) return;
        foreach (var c in _sorted)
        {
            if (c.NamedBy.Count == 0) continue;
            bool trusted = !c.NamedBy.TrueForAll(IsDiscredited);
            if (c.State == CandidateState.Fresh && !trusted)
            {
                c.State = CandidateState.Distrusted;
                _windowDirty = true;
            }
            else if (c.State == CandidateState.Distrusted && trusted)
            {
                Restore(c);
            }
        }
    }

    private void Restore(Candidate candidate)
    {
        candidate.State = CandidateState.Fresh;
        _windowDirty = true;
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

    /// <summary>The window: the k nearest candidates that are not out (failed, slow or distrusted), nearest first.</summary>
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

        /// <summary>Failed or slow (a slow one that answers moves to Answered).</summary>
        public int Failed;

        /// <summary>Slow now: may still answer.</summary>
        public int Slow;

        public bool Discredited;
    }

    /// <summary>What a candidate's outcome counts as, for the nodes that named it.</summary>
    internal enum Counted
    {
        None,
        Answered,
        Failed,

        /// <summary>Failed for now; an answer after all turns it into Answered.</summary>
        Slow,
    }

    internal enum CandidateState
    {
        Fresh,
        Asked,

        /// <summary>Asked, unanswered past SlowRpcThreshold: outside the window unless it answers after all.</summary>
        Slow,
        Answered,
        Failed,

        /// <summary>Named only by discredited nodes: out of the window unless one of them regains its credit.</summary>
        Distrusted,
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

        /// <summary>Times it was asked again for records it left out.</summary>
        public int AskedAgain { get; set; }

        /// <summary>How its outcome is counted for the nodes that named it.</summary>
        public Counted Counted { get; set; }

        public CandidateState State { get; set; }

        /// <summary>Not counted in the window: failed, presumed failed while slow, or distrusted.</summary>
        public bool IsOut => State is CandidateState.Failed or CandidateState.Slow or CandidateState.Distrusted;
    }
}
