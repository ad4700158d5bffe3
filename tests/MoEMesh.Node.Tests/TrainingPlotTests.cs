using System.Buffers.Binary;
using System.Globalization;
using MoEMesh.Node.Cli;

namespace MoEMesh.Node.Tests;

/// <summary>The picture <c>moemesh train</c> draws from its curves.csv.</summary>
public sealed class TrainingPlotTests : IDisposable
{
    private const string Header = "step,epoch,loss,accuracy,router_loss,experts_per_sample,utilisation,fallbacks,failed_steps,samples_per_second,elapsed_seconds";
    private readonly TempFolder _folder = new();

    public void Dispose() => _folder.Dispose();

    private string Curves(string name, bool routed, int steps = 300)
    {
        var path = _folder.Sub(name);
        File.WriteAllLines(path, [Header, .. Enumerable.Range(1, steps).Select(s => string.Create(CultureInfo.InvariantCulture,
            $"{s},{s / 100.0},{2.0 / (1 + s / 50.0)},{Math.Min(0.9, s / 300.0)},0.01,{(routed ? 2 : 0)},{(routed ? (s % 7) / 7.0 : double.NaN)},0,0,500,{s / 10.0}"))]);
        return path;
    }

    [Fact]
    public void ThePng_IsAValidImageOfThePlotsSize_ForARoutedAndADenseModel()
    {
        foreach (var routed in new[] { true, false })
        {
            var png = _folder.Sub($"curves-{routed}.png");
            TrainingPlot.Save(Curves($"curves-{routed}.csv", routed), png, "test: training");
            var bytes = File.ReadAllBytes(png);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], bytes[..8]);
            Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(bytes, 12, 4));
            Assert.Equal(TrainingPlot.Width, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)));
            Assert.Equal(TrainingPlot.Height, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
        }
    }

    [Fact]
    public void TheSvg_NamesEveryCurve()
    {
        var svg = _folder.Sub("curves.svg");
        TrainingPlot.Save(Curves("curves.csv", routed: true), svg, "test: training");
        var document = System.Xml.Linq.XDocument.Load(svg); // well-formed XML
        Assert.Equal("svg", document.Root!.Name.LocalName);
        var texts = document.Descendants().Where(e => e.Name.LocalName == "text").Select(e => e.Value.Trim()).ToArray();
        foreach (var name in (string[])["test: training", "loss", "accuracy", "utilisation H(load)/log(E)", "step"])
            Assert.Contains(name, texts);
    }

    [Fact]
    public void CurvesThatAreNotCurves_AreRefused_NamingWhatIsWrong()
    {
        var noLoss = _folder.Sub("no-loss.csv");
        File.WriteAllLines(noLoss, ["step,accuracy,utilisation", "1,0.5,0.2"]);
        Assert.Contains("has no column 'loss'", Assert.Throws<InvalidDataException>(() => TrainingPlot.Save(noLoss, _folder.Sub("a.png"), "t")).Message);
        var garbled = _folder.Sub("garbled.csv");
        File.WriteAllLines(garbled, [Header, "1,0.01,x,0.5,0,2,0.3,0,0,1,1"]);
        Assert.Contains("line 2: 'x' is not a number", Assert.Throws<InvalidDataException>(() => TrainingPlot.Save(garbled, _folder.Sub("b.png"), "t")).Message);
        Assert.Contains("has no steps", Assert.Throws<InvalidDataException>(() => TrainingPlot.Save(Curves("empty.csv", true, steps: 0), _folder.Sub("c.png"), "t")).Message);
        Assert.False(File.Exists(_folder.Sub("a.png")));
    }
}
