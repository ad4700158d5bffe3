using System.CommandLine;
using System.Text;
using MoEMesh.Dht;
using MoEMesh.Dht.Records;
using MoEMesh.Protocol.Identity;

namespace MoEMesh.Node.Cli;

/// <summary>
/// <c>moemesh dht get|put</c>: read and write DHT values through a running node. The CLI joins the swarm
/// through that node as a client-mode DHT node (never added to anyone's table), so what it sees is what
/// any client would see.
/// </summary>
internal static class DhtCommands
{
    public static Command Create()
    {
        var dht = new Command("dht", "Read and write values in the DHT through a running node");
        dht.Subcommands.Add(Get());
        dht.Subcommands.Add(Put());
        return dht;
    }

    private static Command Get()
    {
        var key = new Argument<string>("key") { Description = "The key, for example expert:ffn.0.1" };
        var peer = CommonOptions.Peer();
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var latest = new Option<bool>("--latest") { Description = "Ask every nearest node and merge the latest entry per subkey" };
        var command = new Command("get", "Print the value under a key (every subkey of a dictionary)") { key, peer, noTls, timeout, latest };
        command.SetAction(async (result, cancellationToken) =>
        {
            var value = await WithDhtAsync(result.GetValue(peer)!, !result.GetValue(noTls), result.GetValue(timeout), null, cancellationToken,
                node => node.GetAsync(result.GetValue(key)!, result.GetValue(latest), cancellationToken));
            if (!value.Ok) return value.Exit;
            if (value.Result is null)
            {
                Console.Error.WriteLine($"no value under {result.GetValue(key)}");
                return 1;
            }
            foreach (var record in value.Result.Records)
                Console.WriteLine($"{(record.Subkey is null ? "" : record.Subkey + "  ")}{Show(record.Value.Span)}  (expires {record.Expiration:O}{(record.IsSigned ? ", signed" : "")})");
            return 0;
        });
        return command;
    }

    private static Command Put()
    {
        var key = new Argument<string>("key") { Description = "The key" };
        var value = new Argument<string>("value") { Description = "The value, as UTF-8 text" };
        var peer = CommonOptions.Peer();
        var noTls = CommonOptions.NoTls();
        var timeout = CommonOptions.Timeout();
        var subkey = new Option<string?>("--subkey") { Description = "Store under this subkey of the key" };
        var ttl = new Option<double>("--ttl") { Description = $"Seconds until the value expires, at most {MaxTtlSeconds} (nodes keep a value at most an hour)", DefaultValueFactory = _ => 60 };
        ttl.Validators.Add(r =>
        {
            double seconds = r.GetValueOrDefault<double>();
            if (!(seconds > 0) || seconds > MaxTtlSeconds) r.AddError($"--ttl must be above 0 and at most {MaxTtlSeconds} seconds (nodes keep a value at most an hour); got {seconds}.");
        });
        var keyFile = new Option<string?>("--key-file") { Description = "Sign with this node key (needed when the key or subkey names its PeerId)" };
        var command = new Command("put", "Store a value on the nearest nodes of its key") { key, value, peer, noTls, timeout, subkey, ttl, keyFile };
        command.SetAction(async (result, cancellationToken) =>
        {
            PeerIdentity? signer = null;
            if (result.GetValue(keyFile) is { } path)
            {
                if (!File.Exists(path))
                {
                    Console.Error.WriteLine($"--key-file: {path} does not exist");
                    return 2;
                }
                signer = PeerIdentity.LoadOrCreate(path);
            }
            var expiration = DateTimeOffset.UtcNow + TimeSpan.FromSeconds(result.GetValue(ttl));
            var bytes = Encoding.UTF8.GetBytes(result.GetValue(value)!);
            var record = signer is null
                ? DhtRecord.Unsigned(result.GetValue(key)!, result.GetValue(subkey), bytes, expiration)
                : DhtRecord.Signed(result.GetValue(key)!, result.GetValue(subkey), bytes, expiration, signer);
            var stored = await WithDhtAsync(result.GetValue(peer)!, !result.GetValue(noTls), result.GetValue(timeout), signer, cancellationToken,
                node => node.StoreAsync(record, cancellationToken));
            if (!stored.Ok) return stored.Exit;
            // One line: where it went, and why not to as many nodes as wanted when that is so.
            Console.WriteLine(stored.Result!.Succeeded ? stored.Result.Problem ?? $"stored on {Words.Count(stored.Result.Replicas, "node")}" : $"not stored: {stored.Result.Problem}");
            return stored.Result.Succeeded ? 0 : 1;
        });
        return command;
    }

    /// <summary>The longest a value lives: the DHT's default MaxTtl (an hour); nodes refuse values that would outlive it.</summary>
    private static readonly double MaxTtlSeconds = new Dht.DhtOptions().MaxTtl.TotalSeconds;

    /// <summary>Joins through <paramref name="peerText"/> as a client-mode node, runs <paramref name="work"/>, leaves.</summary>
    /// <remarks>When joining fails (the reason is written), <c>Exit</c> is the verb's exit code: 2 a bad --peer, 3 no peer answered.</remarks>
    private static async Task<(bool Ok, T? Result, int Exit)> WithDhtAsync<T>(string peerText, bool useTls, double timeoutSeconds, PeerIdentity? identity,
        CancellationToken cancellationToken, Func<DhtNode, Task<T>> work)
    {
        var (client, exit) = await SwarmClient.JoinAsync(peerText, useTls, timeoutSeconds, null, identity, cancellationToken);
        if (client is null) return (false, default, exit);
        await using (client) return (true, await work(client.Dht), 0);
    }

    /// <summary>UTF-8 text when the bytes are printable text, else base64.</summary>
    private static string Show(ReadOnlySpan<byte> bytes)
    {
        try
        {
            var text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
            if (!text.Any(c => char.IsControl(c) && c is not ('\t' or '\n'))) return text;
        }
        catch (DecoderFallbackException)
        {
        }
        return "base64:" + Convert.ToBase64String(bytes);
    }
}
