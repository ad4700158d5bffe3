using System.CommandLine;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Routing.Models;
using MoEMesh.Settings;

namespace MoEMesh.Node.Cli;

/// <summary>Options shared by the verbs that talk to a running node.</summary>
internal static class CommonOptions
{
    public static Option<string> Peer() => new("--peer")
    {
        Description = "The node's peer address, host:port or PEERID@host:port",
        Required = true,
    };

    public static Option<bool> NoTls() => new("--no-tls") { Description = "Talk to a node whose TLS is off (loopback testnets)" };

    public static Option<double> Timeout()
    {
        var option = new Option<double>("--timeout") { Description = "Seconds before giving up", DefaultValueFactory = _ => 15 };
        option.Validators.Add(result =>
        {
            // A value that is not a number was already refused by the parser (reading it here would throw).
            if (result.Tokens.Count > 0 && !double.TryParse(result.Tokens[^1].Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out _)) return;
            double seconds = result.GetValueOrDefault<double>();
            if (!(seconds > 0) || seconds > 86_400) result.AddError($"--timeout must be above 0 and at most 86400 seconds; got {seconds}.");
        });
        return option;
    }

    public static Option<string> Compression() => new("--compression")
    {
        Description = "How activations travel to experts: none, fp16, bf16 or 8bit [none]",
        DefaultValueFactory = _ => "none",
    };

    public static Option<bool> Json() => new("--json") { Description = "Print the result as JSON" };

    /// <summary>Routing options with --compression; on a bad name writes why and returns null.</summary>
    public static MoEMesh.Routing.RoutingOptions? Routing(string compression)
    {
        var options = new MoEMesh.Routing.RoutingOptions { Compression = compression };
        if (SettingsValidation.Problems(options, "").FirstOrDefault() is not { } bad) return options;
        Console.Error.WriteLine($"--compression: {bad.Problem}.");
        return null;
    }

    /// <summary>Parses --peer; on failure writes why and returns null.</summary>
    /// <summary>The model file <c>--trunk-from</c> names, or null after saying in one line why it cannot be read.</summary>
    public static LoadedModelFile? TrunkFrom(string path)
    {
        try
        {
            return ModelFile.Load(path);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            Console.Error.WriteLine($"--trunk-from: {path}: {e.Message}");
            return null;
        }
    }

    public static PeerEndpoint? ParsePeer(string text, string flag = "--peer")
    {
        try
        {
            return PeerEndpoint.Parse(text);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"{flag}: {e.Message}");
            return null;
        }
    }
}
