using System.Globalization;
using MoEMesh.Protocol.Addressing;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Hivemind's expert pattern: a name, then dot-separated coordinates, each a number or a range
/// <c>[from:to]</c> (to excluded): <c>ffn.[0:4].[0:4]</c> stands for the 16 uids ffn.0.0 … ffn.3.3.
/// </summary>
public sealed class UidPattern
{
    private readonly string _name;
    private readonly (int From, int To)[] _ranges;

    private UidPattern(string text, string name, (int From, int To)[] ranges)
    {
        Text = text;
        _name = name;
        _ranges = ranges;
    }

    /// <summary>The pattern as written.</summary>
    public string Text { get; }

    /// <summary>How many uids the pattern stands for.</summary>
    public long Count => _ranges.Aggregate(1L, (n, r) => n * (r.To - r.From));

    /// <summary>Parses a pattern.</summary>
    /// <exception cref="FormatException">The text is not a pattern; the message says which part.</exception>
    public static UidPattern Parse(string text)
    {
        var parts = text.Split('.');
        if (parts.Length < 2 || parts[0].Length == 0)
            throw new FormatException($"'{text}' is not an expert pattern: write a name and coordinates, for example ffn.[0:4].[0:4].");
        var ranges = new (int, int)[parts.Length - 1];
        for (int i = 1; i < parts.Length; i++)
        {
            var part = parts[i];
            if (part.StartsWith('[') && part.EndsWith(']') && part.Split(':') is [var from, var to]
                && int.TryParse(from[1..], NumberStyles.None, CultureInfo.InvariantCulture, out int a)
                && int.TryParse(to[..^1], NumberStyles.None, CultureInfo.InvariantCulture, out int b) && b > a)
                ranges[i - 1] = (a, b);
            else if (int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int fixedAt))
                ranges[i - 1] = (fixedAt, fixedAt + 1);
            else
                throw new FormatException($"'{text}': coordinate '{part}' is neither a number nor a range [from:to] with from < to.");
        }
        return new UidPattern(text, parts[0], ranges);
    }

    /// <summary>Whether <paramref name="uid"/> is one of the pattern's uids.</summary>
    public bool Matches(ExpertUid uid) =>
        uid.Name == _name && uid.Coordinates.Count == _ranges.Length && uid.Coordinates.Select((c, i) => c >= _ranges[i].From && c < _ranges[i].To).All(ok => ok);

    /// <summary>Every uid of the pattern, in grid order.</summary>
    public IEnumerable<ExpertUid> Expand()
    {
        IEnumerable<string> prefixes = [_name];
        foreach (var (from, to) in _ranges)
            prefixes = prefixes.SelectMany(p => Enumerable.Range(from, to - from).Select(c => $"{p}.{c.ToString(CultureInfo.InvariantCulture)}"));
        return prefixes.Select(ExpertUid.Parse);
    }
}
