using System.Net;
using System.Text;

namespace MoEMesh.Testing.Fuzzing;

/// <summary>
/// Sends a node's HTTP API requests built at random: every endpoint and some that do not exist, every
/// method, odd paths and query strings, and bodies that are random bytes or a query with wrong types,
/// huge numbers, deep nesting or cut short. A node must answer each with a status below 500 (503, "still
/// starting", excepted); a 5xx or a connection the node dropped counts as a crash. Seeded.
/// </summary>
public sealed class HttpFuzzer(HttpClient http, IReadOnlyList<string> hostedUids)
{
    private static readonly string[] Paths =
        ["/", "/status.css", "/status.js", "/v1/status", "/v1/query", "/v1/models", "/v1/experts", "/v1/peers", "/v1/routes", "/metrics", "/v1/nothing"];

    private static readonly HttpMethod[] Verbs =
        [HttpMethod.Get, HttpMethod.Get, HttpMethod.Post, HttpMethod.Post, HttpMethod.Head, HttpMethod.Put, HttpMethod.Delete, HttpMethod.Options, HttpMethod.Patch];

    /// <summary>Sends <paramref name="cases"/> requests, one at a time, and tallies the answers.</summary>
    public async Task<FuzzTally> RunAsync(int cases, int seed, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        var tally = new FuzzTally();
        for (int i = 0; i < cases; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var method = Verbs[random.Next(Verbs.Length)];
            // Half the requests with a body go to the one endpoint that reads a body.
            using var request = new HttpRequestMessage(method, method == HttpMethod.Post && random.Next(2) == 0 ? "/v1/query" : Path(random));
            if (request.Method != HttpMethod.Get && request.Method != HttpMethod.Head && random.Next(4) != 0)
                request.Content = new ByteArrayContent(Body(random)) { Headers = { { "Content-Type", random.Next(2) == 0 ? "application/json" : "text/plain; charset=bogus" } } };
            try
            {
                using var response = await http.SendAsync(request, cancellationToken);
                await response.Content.ReadAsByteArrayAsync(cancellationToken);
                tally.Count(((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture));
                if ((int)response.StatusCode >= 500 && response.StatusCode != HttpStatusCode.ServiceUnavailable)
                    tally.Crash($"{request.Method} {request.RequestUri} (case {i}, seed {seed}): {(int)response.StatusCode}");
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
            {
                tally.Count(e.GetType().Name);
                tally.Crash($"{request.Method} {request.RequestUri} (case {i}, seed {seed}): {e.GetType().Name}: {e.Message}");
            }
        }
        return tally;
    }

    private string Path(Random random)
    {
        string path = random.Next(6) switch
        {
            0 => $"/v1/experts/{Uri.EscapeDataString(Text(random))}",
            1 => $"/v1/experts/{hostedUids[random.Next(hostedUids.Count)]}",
            2 => "/v1/" + Uri.EscapeDataString(Text(random)),
            _ => Paths[random.Next(Paths.Length)],
        };
        return random.Next(3) switch
        {
            0 => path + "?grid=" + Uri.EscapeDataString(Text(random)) + (random.Next(2) == 0 ? "&grid=ffn&grid=" : ""),
            1 => path + "?" + string.Concat(Enumerable.Range(0, random.Next(1, 40)).Select(i => $"grid=g{i}&")),
            _ => path,
        };
    }

    private static byte[] Body(Random random)
    {
        string json = random.Next(8) switch
        {
            0 => "",
            1 => "{\"model\":" + new string('[', 5000),
            2 => "{\"model\":123,\"text\":[1,2],\"top\":\"many\"}",
            3 => "{\"model\":\"sample\",\"text\":\"" + new string('w', 100_000) + "\",\"top\":99999999999}",
            4 => "{\"model\":\"sample\",\"text\":\"hello\",\"top\":-1}",
            5 => "{\"model\":\"\\ud800\",\"text\":null}",
            6 => "{\"model\":\"sample\",\"texts\":[\"a\\udc00\",\"\\ud83d\"]}",
            _ => "",
        };
        if (json.Length > 0) return Encoding.UTF8.GetBytes(random.Next(3) == 0 ? json[..random.Next(json.Length)] : json);
        return RandomBytes(random, random.Next(2048));
    }

    private static string Text(Random random) => random.Next(5) switch
    {
        0 => "",
        1 => new string('x', 3000),
        2 => "ffn.0.0.0.0",
        3 => "..%2F..%2Fetc",
        _ => Convert.ToBase64String(RandomBytes(random, 16)),
    };

    private static byte[] RandomBytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }
}
