using System.Globalization;

namespace MoEMesh.Benchmarks;

/// <summary>
/// How every benchmark states a goal: the measure, its figure and the reference measured beside it in the
/// same run, their ratio, the goal, and whether it was met. One line for people; with MOEMESH_BENCH_ROWS
/// set to a file (scripts/bench sets it), the same as a tab-separated row appended there for the table.
/// </summary>
internal static class Goals
{
    public static void Report(string benchmark, string measure, string figure, string reference, double? ratio, string goal, bool met)
    {
        string ratioText = ratio is { } r ? r.ToString("F2", CultureInfo.InvariantCulture) : "-";
        Console.WriteLine($"Goal: {measure}: {figure} against {reference}, ratio {ratioText} (goal {goal}: {(met ? "met" : "not met")})");
        if (Environment.GetEnvironmentVariable("MOEMESH_BENCH_ROWS") is { Length: > 0 } rows)
            File.AppendAllText(rows, string.Join('\t', benchmark, measure, figure, reference, ratioText, goal, met ? "met" : "not met") + Environment.NewLine);
    }

    /// <summary>A number with its unit, invariant culture: "1016 MB/s".</summary>
    public static string Of(double value, string unit, string format = "F0") => $"{value.ToString(format, CultureInfo.InvariantCulture)} {unit}";
}
