using Google.Protobuf;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Dht;
using MoEMesh.Protocol.Wire.Experts;

namespace MoEMesh.Testing.Fuzzing;

/// <summary>
/// Calls every peer method a node serves (and a few it does not) with requests built at random: well-formed
/// ones with wild field values (shapes, offsets, keys, expirations, NaN and infinities in tensors), then
/// bit-flipped, truncated or replaced headers and payloads that disagree with their headers. A node must
/// answer each with a status; <see cref="StatusCode.Internal"/> means a handler failed on input it should
/// have refused, and counts as a crash, as does a call the transport could not complete. Seeded, so a
/// failure repeats.
/// </summary>
public sealed class PeerFuzzer(IPeerTransport transport, PeerEndpoint target, TimeProvider time, IReadOnlyList<string> hostedUids, int dim)
{
    /// <summary>Every method a node maps, and some it does not.</summary>
    public static readonly string[] Methods =
    [
        "dht.ping", "dht.store", "dht.find", "expert.info", "expert.forward", "expert.backward", "expert.input_gradient",
        "blob.fetch", "model.store", "model.query", "node.status", "weights.offer", "expert.fly", "dht.\u00e9",
    ];

    /// <summary>Deadline of each call: long enough for any answer, finite so a hang shows as DeadlineExceeded.</summary>
    public TimeSpan CallTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Sends <paramref name="cases"/> requests, one at a time, and tallies the answers.</summary>
    public async Task<FuzzTally> RunAsync(int cases, int seed, CancellationToken cancellationToken)
    {
        var random = new Random(seed);
        var tally = new FuzzTally();
        for (int i = 0; i < cases; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var method = Methods[random.Next(Methods.Length)];
            var (header, payload) = Request(method, random);
            (header, payload) = Mutate(header, payload, random);
            using var request = new PeerRequest(method, header, payload, time.GetUtcNow() + CallTimeout);
            try
            {
                using var response = await transport.CallAsync(target, request, cancellationToken);
                tally.Count(response.Status.ToString());
                if (response.Status == StatusCode.Internal || response.Status == StatusCode.Unavailable)
                    tally.Crash($"{method} (case {i}, seed {seed}): {response.Status} {response.Message}");
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                tally.Count(e.GetType().Name);
                tally.Crash($"{method} (case {i}, seed {seed}): {e.GetType().Name}: {e.Message}");
            }
        }
        return tally;
    }

    /// <summary>A request for <paramref name="method"/> that parses, with field values drawn from normal and wild ones.</summary>
    private (byte[] Header, byte[] Payload) Request(string method, Random random)
    {
        var sender = new DhtSender { Address = random.Next(3) == 0 ? Junk(random) : "127.0.0.1:1", ClientMode = random.Next(2) == 0 };
        return method switch
        {
            "dht.ping" => (new PingRequest { Sender = sender }.ToByteArray(), []),
            "dht.store" => (Store(sender, random).ToByteArray(), []),
            "dht.find" => (Find(sender, random).ToByteArray(), []),
            "expert.info" => (new ExpertInfoRequest { Uid = Uid(random) }.ToByteArray(), []),
            "expert.forward" => Forward(random),
            "expert.backward" or "expert.input_gradient" => Backward(random),
            "blob.fetch" => (new BlobFetchRequest { Sha256 = random.Next(2) == 0 ? new string('a', 64) : Junk(random), Offset = Wild(random), Length = (uint)Wild(random) }.ToByteArray(), []),
            "model.store" => (new ModelStoreRequest { Publication = Publication(random), Offset = Wild(random) }.ToByteArray(), Bytes(random, random.Next(4096))),
            "model.query" => ([], System.Text.Encoding.UTF8.GetBytes(random.Next(2) == 0 ? $"{{\"model\":\"{Junk(random)}\",\"text\":\"{Junk(random)}\",\"top\":{random.Next(-5, 100)}}}" : Junk(random))),
            "node.status" => (new NodeStatusRequest().ToByteArray(), []),
            "weights.offer" => (Offer(random).ToByteArray(), []),
            _ => (Bytes(random, random.Next(64)), Bytes(random, random.Next(64))),
        };
    }

    private string Uid(Random random) => random.Next(4) switch
    {
        0 => Junk(random),
        1 => "ffn.9.9",
        _ => hostedUids[random.Next(hostedUids.Count)],
    };

    private StoreRequest Store(DhtSender sender, Random random)
    {
        var store = new StoreRequest { Sender = sender };
        for (int i = random.Next(4); i > 0; i--)
            store.Records.Add(new Protocol.Wire.Dht.DhtRecord
            {
                Key = random.Next(2) == 0 ? $"expert:{Uid(random)}" : Junk(random),
                Subkey = random.Next(2) == 0 ? Junk(random) : "",
                Value = ByteString.CopyFrom(Bytes(random, random.Next(256))),
                ExpirationUnixMs = random.Next(3) switch { 0 => long.MaxValue, 1 => -1, _ => time.GetUtcNow().ToUnixTimeMilliseconds() + random.Next(120_000) },
                PublicKey = ByteString.CopyFrom(Bytes(random, random.Next(2) * 91)),
                Signature = ByteString.CopyFrom(Bytes(random, random.Next(2) * 64)),
            });
        return store;
    }

    private static FindRequest Find(DhtSender sender, Random random)
    {
        var find = new FindRequest { Sender = sender };
        for (int i = random.Next(5); i > 0; i--)
        {
            var query = new FindQuery { Target = ByteString.CopyFrom(Bytes(random, random.Next(3) == 0 ? random.Next(64) : 32)) };
            if (random.Next(2) == 0) query.Key = Junk(random);
            find.Queries.Add(query);
        }
        return find;
    }

    private (byte[] Header, byte[] Payload) Forward(Random random)
    {
        var (input, payload) = Tensor(random, 0);
        return (new ForwardRequest { Uid = Uid(random), Input = input }.ToByteArray(), payload);
    }

    private (byte[] Header, byte[] Payload) Backward(Random random)
    {
        var (input, first) = Tensor(random, 0);
        var (gradient, second) = Tensor(random, first.Length);
        var request = new BackwardRequest { Uid = Uid(random), Input = input, OutputGradient = gradient };
#pragma warning disable CS0612 // Frozen is deprecated, and still honoured by hosts: a peer may send it.
        request.Frozen = random.Next(2) == 0;
#pragma warning restore CS0612
        return (request.ToByteArray(), [.. first, .. second]);
    }

    /// <summary>A tensor header and its payload bytes: the expert's shape mostly, with wild shapes, dtypes, offsets and values at times.</summary>
    private (TensorHeader Header, byte[] Payload) Tensor(Random random, int offset)
    {
        int rows = random.Next(4) == 0 ? random.Next(-2, 3) : 1 + random.Next(8);
        int width = random.Next(4) == 0 ? random.Next(-1, 2 * dim) : dim;
        var header = new TensorHeader
        {
            Dtype = random.Next(6) == 0 ? (DType)random.Next(5) : DType.F32,
            Compression = random.Next(4) == 0 ? (Compression)random.Next(6) : Compression.None,
        };
        header.Shape.Add(rows);
        header.Shape.Add(width);
        if (random.Next(10) == 0) header.Shape.Add(random.Next(-1, 4));
        int count = Math.Max(0, rows) * Math.Max(0, width);
        var values = new float[Math.Min(count, 1 << 16)];
        for (int i = 0; i < values.Length; i++)
            values[i] = random.Next(50) switch { 0 => float.NaN, 1 => float.PositiveInfinity, 2 => float.MaxValue, _ => (float)(random.NextDouble() * 2 - 1) };
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        header.Offset = random.Next(8) == 0 ? Wild(random) : (ulong)offset;
        header.Length = random.Next(8) == 0 ? Wild(random) : (ulong)bytes.Length;
        return (header, bytes);
    }

    private static ModelPublication Publication(Random random) => new()
    {
        Name = random.Next(2) == 0 ? "fuzz" : Junk(random),
        Version = random.Next(),
        Sha256 = random.Next(2) == 0 ? new string('b', 64) : Junk(random),
        Size = Wild(random),
        PublisherKey = ByteString.CopyFrom(Bytes(random, random.Next(2) * 91)),
        Signature = ByteString.CopyFrom(Bytes(random, random.Next(2) * 64)),
    };

    private WeightsOfferRequest Offer(Random random)
    {
        var offer = new WeightsOfferRequest
        {
            Snapshot = new WeightsSnapshot
            {
                Uid = Uid(random),
                Updates = random.Next(-3, 1000),
                Sha256 = random.Next(2) == 0 ? new string('c', 64) : Junk(random),
                Size = Wild(random),
                SchemaHash = Junk(random),
                CreatedUnixMs = random.Next(),
                HostKey = ByteString.CopyFrom(Bytes(random, random.Next(2) * 91)),
                Signature = ByteString.CopyFrom(Bytes(random, random.Next(2) * 64)),
                BaseUpdates = random.Next(-3, 1000),
            },
        };
        offer.Addresses.Add(random.Next(2) == 0 ? "127.0.0.1:1" : Junk(random));
        return offer;
    }

    /// <summary>Leaves the request as built most of the time; otherwise flips bits, cuts, or replaces header or payload.</summary>
    private static (byte[] Header, byte[] Payload) Mutate(byte[] header, byte[] payload, Random random)
    {
        switch (random.Next(8))
        {
            case 0 when header.Length > 0:
                var flipped = (byte[])header.Clone();
                for (int i = 1 + random.Next(4); i > 0; i--) flipped[random.Next(flipped.Length)] ^= (byte)(1 << random.Next(8));
                return (flipped, payload);
            case 1 when header.Length > 0:
                return (header[..random.Next(header.Length)], payload);
            case 2:
                return (Bytes(random, random.Next(128)), payload);
            case 3:
                return (header, payload.Length > 0 ? payload[..random.Next(payload.Length)] : Bytes(random, random.Next(1024)));
            default:
                return (header, payload);
        }
    }

    /// <summary>A number that is usually small and sometimes absurd.</summary>
    private static ulong Wild(Random random) => random.Next(4) switch
    {
        0 => ulong.MaxValue - (ulong)random.Next(16),
        1 => (ulong)random.NextInt64(),
        _ => (ulong)random.Next(1 << 16),
    };

    private static byte[] Bytes(Random random, int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    /// <summary>Text that is empty, long, odd Unicode, or a plausible name with one bad character.</summary>
    private static string Junk(Random random) => random.Next(7) switch
    {
        0 => "",
        1 => new string('x', 5000),
        2 => "ffn.0.\u0000",
        3 => "../../etc/passwd",
        4 => "é\ud800☃",
        5 => "\\ud800 escaped in JSON",
        _ => Convert.ToBase64String(Bytes(random, random.Next(1, 40))),
    };
}
