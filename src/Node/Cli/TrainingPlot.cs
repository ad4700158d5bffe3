using System.Globalization;

namespace MoEMesh.Node.Cli;

/// <summary>
/// The picture of a training run, drawn with ScottPlot from its curves.csv: loss on the left axis, accuracy
/// and expert utilisation (0 to 1) on the right, each over steps as the mean of a sliding window (a step's
/// batch alone is too noisy to read), so a collapse of the routing shows beside the loss.
/// </summary>
internal static class TrainingPlot
{
    /// <summary>Pixels of the picture.</summary>
    public const int Width = 1000, Height = 560;

    /// <summary>Draws the curves in <paramref name="curvesCsv"/> to <paramref name="picture"/> (.png or .svg).</summary>
    /// <exception cref="InvalidDataException">The CSV is not curves as <see cref="TrainingView"/> writes them; the message says where.</exception>
    public static void Save(string curvesCsv, string picture, string title)
    {
        var curves = Read(curvesCsv);
        int window = Math.Max(1, curves.Steps.Length / 100);
        var plot = new ScottPlot.Plot();
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("loss");
        plot.Axes.Right.Label.Text = "accuracy, utilisation";
        var loss = plot.Add.ScatterLine(curves.Steps, Smooth(curves.Loss, window));
        loss.LegendText = "loss";
        foreach (var (values, name) in new[] { (curves.Accuracy, "accuracy"), (curves.Utilisation, "utilisation H(load)/log(E)") })
        {
            if (values.All(double.IsNaN)) continue; // a dense model routes nothing
            var line = plot.Add.ScatterLine(curves.Steps, Smooth(values, window));
            line.LegendText = name;
            line.Axes.YAxis = plot.Axes.Right;
        }
        plot.Axes.SetLimitsY(0, 1, plot.Axes.Right);
        plot.ShowLegend(ScottPlot.Alignment.UpperCenter);
        if (string.Equals(Path.GetExtension(picture), ".svg", StringComparison.OrdinalIgnoreCase)) plot.SaveSvg(picture, Width, Height);
        else plot.SavePng(picture, Width, Height);
    }

    private sealed record Curves(double[] Steps, double[] Loss, double[] Accuracy, double[] Utilisation);

    private static Curves Read(string path)
    {
        var lines = File.ReadAllLines(path);
        var header = lines.Length > 0 ? lines[0].Split(',') : [];
        int Column(string name) => Array.IndexOf(header, name) is >= 0 and var i ? i : throw new InvalidDataException($"{path} has no column '{name}'.");
        int step = Column("step"), loss = Column("loss"), accuracy = Column("accuracy"), utilisation = Column("utilisation");
        var rows = lines.Skip(1).Where(l => l.Length > 0).Select((l, n) =>
        {
            var cells = l.Split(',');
            double Cell(int i) => i < cells.Length && double.TryParse(cells[i], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v
                : cells.ElementAtOrDefault(i) is "" or "NaN" ? double.NaN : throw new InvalidDataException($"{path}, line {n + 2}: '{cells.ElementAtOrDefault(i)}' is not a number.");
            return (Step: Cell(step), Loss: Cell(loss), Accuracy: Cell(accuracy), Utilisation: Cell(utilisation));
        }).ToArray();
        if (rows.Length == 0) throw new InvalidDataException($"{path} has no steps to draw.");
        return new Curves([.. rows.Select(r => r.Step)], [.. rows.Select(r => r.Loss)], [.. rows.Select(r => r.Accuracy)], [.. rows.Select(r => r.Utilisation)]);
    }

    /// <summary>Each point the mean of the finite values among itself and the <paramref name="window"/> - 1 before it (a running sum).</summary>
    private static double[] Smooth(double[] values, int window)
    {
        var smooth = new double[values.Length];
        double sum = 0;
        int count = 0;
        for (int i = 0; i < values.Length; i++)
        {
            if (double.IsFinite(values[i])) (sum, count) = (sum + values[i], count + 1);
            if (i >= window && double.IsFinite(values[i - window])) (sum, count) = (sum - values[i - window], count - 1);
            smooth[i] = count == 0 ? double.NaN : sum / count;
        }
        return smooth;
    }
}
