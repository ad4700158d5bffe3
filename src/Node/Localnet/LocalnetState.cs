using System.Text.Json;
using System.Text.Json.Serialization;

namespace MoEMesh.Node.Localnet;

/// <summary>
/// What <c>localnet up</c> started, kept in the run directory (<c>localnet.json</c>) so that <c>status</c>,
/// <c>chaos</c> and <c>down</c> act on exactly these processes.
/// </summary>
/// <param name="UseTls">Whether the nodes speak TLS to each other.</param>
/// <param name="Nodes">The nodes, the bootstrap node first.</param>
/// <param name="Wan">The network namespaces and links of a <c>--wan</c> testnet; null on loopback.</param>
internal sealed record LocalnetState(bool UseTls, IReadOnlyList<LocalnetNode> Nodes, Wan.WanNetwork? Wan = null)
{
    /// <summary>The file's name in the run directory.</summary>
    public const string FileName = "localnet.json";

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The state in <paramref name="runDir"/>, or null when no testnet was started there.</summary>
    /// <exception cref="LocalnetException">The file exists but cannot be read.</exception>
    public static LocalnetState? Load(string runDir)
    {
        var path = Path.Combine(runDir, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonSerializer.Deserialize<LocalnetState>(File.ReadAllBytes(path), Json) ?? throw new JsonException("it is empty");
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new LocalnetException($"{path} cannot be read ({e.Message}); stop its processes by hand and delete it.");
        }
    }

    /// <summary>Writes the state to <paramref name="runDir"/> (through a temporary file, so a crash leaves the old one).</summary>
    public void Save(string runDir)
    {
        var path = Path.Combine(runDir, FileName);
        File.WriteAllBytes(path + ".tmp", JsonSerializer.SerializeToUtf8Bytes(this, Json));
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>This state with <paramref name="node"/> in place of the node of the same index.</summary>
    public LocalnetState With(LocalnetNode node) => this with { Nodes = Nodes.Select(n => n.Index == node.Index ? node : n).ToArray() };
}

/// <summary>One node of the testnet: its process, ports, files and experts.</summary>
/// <param name="Index">0 for the bootstrap peer, then 1, 2, ...</param>
/// <param name="Pid">The process started for it; null once <c>down</c> or <c>chaos</c> stopped it.</param>
/// <param name="PeerId">Its PeerId, read from its status once it answered.</param>
/// <param name="PeerPort">Its peer-protocol port on <paramref name="Host"/>.</param>
/// <param name="HttpPort">Its HTTP port on <paramref name="Host"/>.</param>
/// <param name="Config">Its configuration file.</param>
/// <param name="Log">Its log file.</param>
/// <param name="Experts">The uids it hosts.</param>
/// <param name="Host">The address it listens on: 127.0.0.1, or its own in a <c>--wan</c> testnet.</param>
/// <param name="Namespace">The network namespace it runs in (<c>--wan</c>); null on loopback.</param>
/// <param name="LinkPid">The process of its link (<c>--wan</c>): <c>moemesh localnet link</c> in its namespace.</param>
internal sealed record LocalnetNode(int Index, int? Pid, string? PeerId, int PeerPort, int HttpPort, string Config, string Log, IReadOnlyList<string> Experts,
    string Host = "127.0.0.1", string? Namespace = null, int? LinkPid = null)
{
    /// <summary>Its HTTP API.</summary>
    [JsonIgnore]
    public Uri Http => new($"http://{Host}:{HttpPort}");

    /// <summary>Its peer address.</summary>
    [JsonIgnore]
    public string PeerAddress => $"{Host}:{PeerPort}";

    /// <summary>Its link's log (<c>--wan</c>).</summary>
    [JsonIgnore]
    public string LinkLog => Path.ChangeExtension(Log, ".link.log");

    /// <summary>"node 2".</summary>
    public override string ToString() => $"node {Index}";
}
