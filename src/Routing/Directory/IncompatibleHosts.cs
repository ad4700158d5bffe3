using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Routing.Directory;

/// <summary>
/// Hosts skipped because they announce a uid with another expert type or schema than the layer asking
/// for it: counted every time one is skipped, logged once per host, uid and announced schema, so a
/// mismatched volunteer is visible without flooding the log. Shared by a node's gating layers.
/// </summary>
public sealed partial class IncompatibleHosts(ILogger? logger = null)
{
    /// <summary>Distinct entries remembered (and so logged) at most; past it skips are still counted.</summary>
    public const int MaxRemembered = 1024;

    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly HashSet<(PeerId Host, ExpertUid Uid, string Type, string SchemaHash)> _seen = [];
    private long _skipped;

    /// <summary>Times a host was skipped as incompatible.</summary>
    public long Skipped => Interlocked.Read(ref _skipped);

    /// <summary>Distinct (host, uid, announced schema) seen incompatible.</summary>
    public int Distinct
    {
        get
        {
            lock (_seen) return _seen.Count;
        }
    }

    /// <summary>The hosts of <paramref name="hosts"/> that serve <paramref name="kind"/>; the others are counted and logged once.</summary>
    public IReadOnlyList<ExpertHostInfo> Filter(IReadOnlyList<ExpertHostInfo> hosts, ExpertKind kind)
    {
        if (hosts.All(h => kind.Accepts(h.Type, h.SchemaHash))) return hosts;
        var compatible = new List<ExpertHostInfo>(hosts.Count);
        foreach (var host in hosts)
        {
            if (kind.Accepts(host.Type, host.SchemaHash))
            {
                compatible.Add(host);
                continue;
            }
            Interlocked.Increment(ref _skipped);
            bool first;
            lock (_seen) first = _seen.Count < MaxRemembered && _seen.Add((host.Host, host.Uid, Clip(host.Type), Clip(host.SchemaHash)));
            if (first) LogIncompatible(_logger, host.Host.ToString(), host.Uid.Value, Clip(host.Type), Clip(host.SchemaHash), kind.ToString(), kind.SchemaHash);
        }
        return compatible;
    }

    /// <summary>What a peer announced, cut to a length fit for a log line and a set.</summary>
    private static string Clip(string text) => text.Length <= 64 ? text : text[..64] + "…";

    [LoggerMessage(EventId = 600, Level = LogLevel.Warning,
        Message = "Skipping host {PeerId} for expert {ExpertUid}: it serves type {Type} with schema {SchemaHash}, the layer needs {Kind} (schema {Expected}); it is never called")]
    private static partial void LogIncompatible(ILogger logger, string peerId, string expertUid, string type, string schemaHash, string kind, string expected);
}
