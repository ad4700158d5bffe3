namespace MoEMesh.Testing.Fuzzing;

/// <summary>What a fuzzer sent and how the node answered: counts per outcome, and the crashes in words.</summary>
public sealed class FuzzTally
{
    private readonly SortedDictionary<string, int> _outcomes = new(StringComparer.Ordinal);
    private readonly List<string> _crashes = [];

    /// <summary>Requests sent.</summary>
    public int Cases { get; private set; }

    /// <summary>Answers by outcome (a status, or the exception a call ended in).</summary>
    public IReadOnlyDictionary<string, int> Outcomes => _outcomes;

    /// <summary>The cases the node failed, each saying which and how (the first 20).</summary>
    public IReadOnlyList<string> Crashes => _crashes;

    /// <summary>How many cases the node failed.</summary>
    public int CrashCount { get; private set; }

    public void Count(string outcome)
    {
        Cases++;
        _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + 1;
    }

    public void Crash(string what)
    {
        CrashCount++;
        if (_crashes.Count < 20) _crashes.Add(what);
    }

    /// <summary>Adds another tally's counts to this one.</summary>
    public void Add(FuzzTally other)
    {
        foreach (var (outcome, n) in other._outcomes) _outcomes[outcome] = _outcomes.GetValueOrDefault(outcome) + n;
        Cases += other.Cases;
        CrashCount += other.CrashCount;
        _crashes.AddRange(other._crashes.Take(20 - _crashes.Count));
    }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Cases} cases, {CrashCount} crashes; " + string.Join(", ", _outcomes.Select(o => $"{o.Key} {o.Value}"))
        + (_crashes.Count > 0 ? Environment.NewLine + string.Join(Environment.NewLine, _crashes) : "");
}
