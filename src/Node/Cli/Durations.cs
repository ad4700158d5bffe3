using System.Globalization;

namespace MoEMesh.Node.Cli;

/// <summary>Durations as people write them: 850 ms, 19 s, 4 min 3 s, 2 h 5 min, 3 d 4 h.</summary>
internal static class Durations
{
    public static string Human(TimeSpan span)
    {
        if (span < TimeSpan.Zero) return "-" + Human(-span);
        if (span < TimeSpan.FromSeconds(1)) return $"{span.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture)} ms";
        if (span < TimeSpan.FromMinutes(1)) return $"{(int)span.TotalSeconds} s";
        if (span < TimeSpan.FromHours(1)) return Pair((int)span.TotalMinutes, "min", span.Seconds, "s");
        if (span < TimeSpan.FromDays(1)) return Pair((int)span.TotalHours, "h", span.Minutes, "min");
        return Pair((int)span.TotalDays, "d", span.Hours, "h");
    }

    private static string Pair(int major, string majorUnit, int minor, string minorUnit) =>
        minor == 0 ? $"{major} {majorUnit}" : $"{major} {majorUnit} {minor} {minorUnit}";
}
