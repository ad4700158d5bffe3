using System.Text.Json;
using MoEMesh.Node.Http;

namespace MoEMesh.Node.Localnet;

/// <summary>Asks testnet nodes over their HTTP API whether they answer and which experts they see.</summary>
internal sealed class LocalnetProbe(TimeProvider time) : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(2) };

    /// <summary>The clock deadlines are measured on.</summary>
    public TimeProvider Time => time;

    /// <summary>The node's status, or null when it does not answer.</summary>
    public Task<NodeStatus?> StatusAsync(LocalnetNode node, CancellationToken cancellationToken) =>
        GetAsync(node, "/v1/status", json => (NodeStatus?)NodeStatus.FromJson(json), cancellationToken);

    /// <summary>Whether <paramref name="node"/> finds a host of <paramref name="uid"/> in the DHT.</summary>
    public Task<bool> SeesAsync(LocalnetNode node, string uid, CancellationToken cancellationToken) =>
        GetAsync(node, $"/v1/experts/{uid}", json =>
        {
            using var hosts = JsonDocument.Parse(json);
            return hosts.RootElement.ValueKind == JsonValueKind.Array && hosts.RootElement.GetArrayLength() > 0;
        }, cancellationToken);

    /// <summary>What <paramref name="read"/> makes of the node's answer at <paramref name="path"/>; the default when it does not answer or the answer does not parse.</summary>
    private async Task<T> GetAsync<T>(LocalnetNode node, string path, Func<byte[], T> read, CancellationToken cancellationToken)
    {
        try
        {
            return read(await _http.GetByteArrayAsync(new Uri(node.Http, path), cancellationToken));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException && !cancellationToken.IsCancellationRequested)
        {
            return default!;
        }
    }

    /// <summary>
    /// Waits until <paramref name="node"/> answers its status as ready (joined, experts announced; and returns it), its process ends, or
    /// <paramref name="until"/> passes; the last two throw naming the node, its log and the log's last line.
    /// </summary>
    public async Task<NodeStatus> ReadyAsync(LocalnetNode node, DateTimeOffset until, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (await StatusAsync(node, cancellationToken) is { Ready: true } status) return status;
            if (!LocalnetProcesses.IsRunning(node))
                throw new LocalnetException($"{node} exited at start: {LastLine(node.Log)} (log: {node.Log})", 3);
            if (time.GetUtcNow() >= until)
                throw new LocalnetException($"{node} did not become ready on {node.Http} in time (--timeout); its log ends: {LastLine(node.Log)} (log: {node.Log})", 3);
            await Task.Delay(TimeSpan.FromMilliseconds(200), time, cancellationToken);
        }
    }

    /// <summary>The first line of <paramref name="log"/>, or null when it has none yet.</summary>
    public static string? FirstLine(string log)
    {
        try
        {
            return File.Exists(log) ? File.ReadLines(log).FirstOrDefault() : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The last line of <paramref name="log"/> that is not blank.</summary>
    public static string LastLine(string log)
    {
        try
        {
            return File.ReadLines(log).LastOrDefault(l => !string.IsNullOrWhiteSpace(l))?.Trim() ?? "(empty)";
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }

    public void Dispose() => _http.Dispose();
}
