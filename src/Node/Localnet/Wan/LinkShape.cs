using System.Globalization;
using System.Text.Json.Serialization;

namespace MoEMesh.Node.Localnet.Wan;

/// <summary>
/// What each link of a <c>--wan</c> testnet does to the packets a node sends: a one-way
/// <see cref="Delay"/>, spread evenly by up to <see cref="Jitter"/> either side, and a share
/// <see cref="Loss"/> of them lost. A packet crossing from one node to another meets its sender's link, so
/// a round trip between two nodes takes twice the delay.
/// </summary>
internal sealed record LinkShape(TimeSpan Delay, TimeSpan Jitter, double Loss)
{
    /// <summary>50 ms ± 10 ms, 1 % loss: a link across a continent.</summary>
    public static readonly LinkShape Default = new(TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(10), 0.01);

    /// <summary>
    /// The longest delay a link takes: half a second each way is beyond any terrestrial or satellite link,
    /// and longer ones outlast the node's own time limits (a 1 s discovery, 2 s forward, 3 s connect).
    /// </summary>
    public static readonly TimeSpan MaxDelay = TimeSpan.FromMilliseconds(500);

    /// <summary>The problem with this shape, or null when it can be used.</summary>
    [JsonIgnore]
    public string? Problem =>
        Delay < TimeSpan.Zero || Delay > MaxDelay ? $"--delay must be between 0 and {MaxDelay.TotalMilliseconds:F0}ms; got {Words.Duration(Delay)}."
        : Jitter < TimeSpan.Zero || Jitter > Delay ? $"--jitter must be between 0 and the delay ({Words.Duration(Delay)}); got {Words.Duration(Jitter)}."
        : Loss is < 0 or >= 1 || double.IsNaN(Loss) ? $"--loss must be a share from 0% to below 100%; got {Loss * 100:0.###}%."
        : null;

    /// <summary>The <c>localnet link</c> arguments that make a link of this shape.</summary>
    public IEnumerable<string> Arguments() =>
        ["--delay", Milliseconds(Delay), "--jitter", Milliseconds(Jitter), "--loss", (Loss * 100).ToString("0.###", CultureInfo.InvariantCulture) + "%"];

    /// <summary>"50 ms ± 10 ms, 1 % loss".</summary>
    public override string ToString() =>
        $"{Delay.TotalMilliseconds:0.#} ms ± {Jitter.TotalMilliseconds:0.#} ms, {Loss * 100:0.###} % loss";

    /// <summary>"1%", "0.5%" or "0": a share of packets.</summary>
    public static double? ParseLoss(string text)
    {
        string number = text.EndsWith('%') ? text[..^1] : text;
        return double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out double percent) && (text.EndsWith('%') || percent == 0) ? percent / 100 : null;
    }

    private static string Milliseconds(TimeSpan span) => span.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture) + "ms";
}
