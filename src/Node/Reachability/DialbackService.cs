using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using Google.Protobuf;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Transport;
using MoEMesh.Protocol.Wire;

namespace MoEMesh.Node.Reachability;

/// <summary>
/// Dial-back, both ways. Asked (<c>node.dialback</c>), this node dials the asker's address over a fresh
/// connection (never a pooled one, which the asker may have opened itself), checks in the handshake that the
/// asker's PeerId answers there, and calls <c>node.dialback_echo</c> with the asker's nonce. It dials only
/// the IP the request came from (so it cannot be aimed at third parties) and at most
/// <see cref="ReachabilityOptions.MaxDialbacksPerMinute"/> times a minute. Asking, this node believes only the
/// echoes it receives, not what peers claim.
/// </summary>
public sealed class DialbackService(PeerIdentity identity, PeerProtocolOptions protocol, ReachabilityOptions options, TimeProvider time)
{
    /// <summary>Dial me back (header <c>DialbackRequest</c>; answer <c>DialbackResponse</c>).</summary>
    public const string DialbackMethod = "node.dialback";

    /// <summary>The echo over the fresh connection (header <c>DialbackEcho</c>).</summary>
    public const string EchoMethod = "node.dialback_echo";

    /// <summary>Dial-backs this node makes for one network (an IPv4 /24, an IPv6 /48) per minute: one machine cannot use up everyone's turns.</summary>
    private const int MaxDialbacksPerNetworkPerMinute = 6;

    private readonly ConcurrentDictionary<string, Waiting> _waiting = new(StringComparer.Ordinal);
    private readonly Queue<(DateTimeOffset At, string Network)> _recent = new();

    /// <summary>Registers both methods.</summary>
    public void Map(PeerRouter router) => router.Map(DialbackMethod, DialBackAsync).Map(EchoMethod, Echo);

    /// <summary>
    /// Asks <paramref name="wanted"/> of <paramref name="candidates"/> (at once) to dial this node back at
    /// <paramref name="address"/>, or, when null, at the IP each sees the request come from and <paramref name="port"/>.
    /// Peers that do not answer (at their dial-back limit, or gone) are replaced by the next candidates, for a few
    /// rounds at most. What the answers mean is <see cref="ReachabilityReport.Of"/>'s to say.
    /// </summary>
    public async Task<ReachabilityReport> CheckAsync(IPeerTransport transport, PeerAddress? address, int port, IReadOnlyList<PeerEndpoint> candidates, int wanted,
        CancellationToken cancellationToken)
    {
        const int Rounds = 3;
        var results = new List<DialbackResult>();
        int answered = 0, next = 0;
        for (int round = 0; round < Rounds && next < candidates.Count && answered < wanted; round++)
        {
            var ask = candidates.Skip(next).Take(wanted - answered).ToArray();
            next += ask.Length;
            var roundResults = await Task.WhenAll(ask.Select(p => AskAsync(transport, address, port, p, cancellationToken)));
            results.AddRange(roundResults);
            answered += roundResults.Count(r => r.ObservedAddress is not null);
        }
        string asked = address?.ToString()
            ?? (results.Select(r => r.ObservedAddress).FirstOrDefault(a => !string.IsNullOrEmpty(a)) is { } seen ? new PeerAddress(seen, port).ToString() : $"port {port}");
        return ReachabilityReport.Of(asked, time.GetUtcNow(), results);
    }

    private async Task<DialbackResult> AskAsync(IPeerTransport transport, PeerAddress? address, int port, PeerEndpoint peer, CancellationToken cancellationToken)
    {
        var nonce = RandomNumberGenerator.GetBytes(32);
        var key = Convert.ToHexString(nonce);
        var echoed = new Waiting(peer.PeerId);
        _waiting[key] = echoed;
        try
        {
            var sent = time.GetUtcNow();
            var request = new DialbackRequest { Address = address?.ToString() ?? "", Port = (uint)port, Nonce = ByteString.CopyFrom(nonce) };
            using var response = await transport.CallAsync(peer, PeerRequest.Create(DialbackMethod, request, default, sent + 2 * options.DialbackTimeout), cancellationToken);
            var received = time.GetUtcNow();
            bool reached = echoed.Echo.Task.IsCompleted;
            if (response.Status != StatusCode.Ok) return new DialbackResult(peer.ToString(), reached, response.Message, null, null);
            DialbackResponse answer;
            try
            {
                answer = response.ParseHeader(DialbackResponse.Parser);
            }
            catch (PeerRpcException e)
            {
                return new DialbackResult(peer.ToString(), reached, e.Message, null, null);
            }
            // The peer's clock is untrusted: a time stamp more than a day off says nothing useful.
            var theirs = DateTimeOffset.UnixEpoch + TimeSpan.FromTicks(Math.Clamp(answer.UnixMicros, 0, 200_000_000_000_000_000L) * 10);
            var offset = theirs - (sent + (received - sent) / 2);
            string? dialled = PeerAddress.TryParse(answer.Dialled, out var d) && !d.Relayed ? d.ToString() : null;
            return new DialbackResult(peer.ToString(), reached, reached ? null : answer.Problem is { Length: > 0 } p ? p[..Math.Min(p.Length, 500)] : "no echo arrived",
                answer.ObservedAddress[..Math.Min(answer.ObservedAddress.Length, 64)], offset.Duration() <= TimeSpan.FromDays(1) ? offset : null, dialled);
        }
        finally
        {
            _waiting.TryRemove(key, out _);
        }
    }

    private ValueTask<PeerResponse> Echo(PeerRequest request, CancellationToken cancellationToken)
    {
        // An echo must come over a connection dialled to this node, from the peer that was asked: not through a
        // relay (that proves nothing about this node's own address), and not from anyone who learnt the nonce.
        if (request.ThroughRelay) throw new PeerRpcException(StatusCode.PermissionDenied, $"{EchoMethod}: an echo through a relay proves nothing; dial this node directly.");
        var echo = request.ParseHeader(DialbackEcho.Parser);
        if (!_waiting.TryGetValue(Convert.ToHexString(echo.Nonce.Span), out var waiting) || waiting.Asked is { } asked && asked != request.Caller)
            return ValueTask.FromResult(PeerResponse.Error(StatusCode.NotFound, $"{EchoMethod}: no dial-back with this nonce is pending here for {request.Caller}."));
        waiting.Echo.TrySetResult();
        return ValueTask.FromResult(PeerResponse.Ok());
    }

    private async ValueTask<PeerResponse> DialBackAsync(PeerRequest request, CancellationToken cancellationToken)
    {
        // Through a relay (or where the transport does not know addresses) nobody can tell where the asker is.
        if (request.ThroughRelay || request.RemoteAddress is not { } from)
            throw new PeerRpcException(StatusCode.PermissionDenied, $"{DialbackMethod}: this request did not come straight from the asker; ask over a connection of your own.");
        var seen = from.IsIPv4MappedToIPv6 ? from.MapToIPv4() : from;
        var header = request.ParseHeader(DialbackRequest.Parser);
        if (header.Address.Length == 0 && header.Port is >= 1 and <= 65535) header.Address = new PeerAddress(seen.ToString(), (int)header.Port).ToString();
        if (!PeerAddress.TryParse(header.Address, out var address) || address.Relayed || !address.IsDialable)
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{DialbackMethod}: '{header.Address}' is not an address to dial (host:port).");
        if (header.Nonce.Length is < 16 or > 64)
            throw new PeerRpcException(StatusCode.InvalidArgument, $"{DialbackMethod}: the nonce must be 16 to 64 bytes; got {header.Nonce.Length}.");
        if (TakeTurn(AddressNetwork.Of(seen)) is { } busy) throw new PeerRpcException(StatusCode.ResourceExhausted, $"{DialbackMethod}: {busy}; ask another peer.");
        var answer = new DialbackResponse { ObservedAddress = seen.ToString() };
        // Only the asker's own IP is dialled, as an IP (a name is never dialled: it could name another host too), at
        // the port it asked for. Where the address it asked for is that IP (or a name of it), the answer says so;
        // else (behind a NAT, its LAN or loopback address) the answer names the IP dialled.
        var target = new PeerAddress(seen.ToString(), address.Port);
        bool asked = await IsAskersAsync(address, seen, cancellationToken);
        answer.Dialled = asked ? address.ToString() : target.ToString();
        answer.Problem = await DialAsync(target, request.Caller, header.Nonce, cancellationToken) is { } problem
            ? asked ? problem : $"you asked for {address}, but your connection comes from {seen} (behind a NAT?), so {target} was dialled: {problem}"
            : "";
        answer.Reached = answer.Problem.Length == 0;
        answer.UnixMicros = (time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
        return PeerResponse.Ok(answer);
    }

    /// <summary>Whether <paramref name="address"/>'s host is <paramref name="from"/>, or a name that resolves to it.</summary>
    private async Task<bool> IsAskersAsync(PeerAddress address, IPAddress from, CancellationToken cancellationToken)
    {
        if (IPAddress.TryParse(address.Host, out var ip)) return (ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip).Equals(from);
        try
        {
            using var limit = new CancellationTokenSource(options.DialbackTimeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, cancellationToken);
            var ips = await Dns.GetHostAddressesAsync(address.Host, linked.Token);
            return ips.Any(i => (i.IsIPv4MappedToIPv6 ? i.MapToIPv4() : i).Equals(from));
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }

    /// <summary>Dials <paramref name="address"/> fresh, expects <paramref name="asker"/> there and echoes the nonce; null when that worked, else why not.</summary>
    private async Task<string?> DialAsync(PeerAddress address, PeerId asker, ByteString nonce, CancellationToken cancellationToken)
    {
        using var limit = new CancellationTokenSource(options.DialbackTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(limit.Token, cancellationToken);
        // What a dial-back tells the asker is kept coarse (could connect or not, was it the asker), so that asking
        // for dial-backs cannot be used to probe what else listens at an address.
        Stream stream;
        try
        {
            stream = await PeerConnection.DialAsync(address, protocol, time, linked.Token);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return $"could not connect to {address}";
        }
        try
        {
            // ConnectOverAsync owns the stream now, and disposes it on failure.
            await using var connection = await PeerConnection.ConnectOverAsync(stream, new PeerEndpoint(address, asker), identity, protocol, time, linked.Token);
            using var echo = await connection.CallAsync(PeerRequest.Create(EchoMethod, new DialbackEcho { Nonce = nonce }, default, time.GetUtcNow() + options.DialbackTimeout), linked.Token);
            return echo.Status == StatusCode.Ok ? null : $"connected to {address}, but the echo was refused: {echo.Message}";
        }
        catch (PeerUnavailableException)
        {
            return $"connected to {address}, but not to you (no handshake as your PeerId)";
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return $"connected to {address}, but no echo within {options.DialbackTimeout.TotalSeconds:F0} s";
        }
    }

    /// <summary>Takes a turn to dial back for <paramref name="network"/>; why not, when the node is at a limit.</summary>
    private string? TakeTurn(string network)
    {
        var now = time.GetUtcNow();
        lock (_recent)
        {
            while (_recent.Count > 0 && now - _recent.Peek().At >= TimeSpan.FromMinutes(1)) _recent.Dequeue();
            if (_recent.Count >= options.MaxDialbacksPerMinute) return $"this node dials back at most {options.MaxDialbacksPerMinute} times a minute";
            if (_recent.Count(r => r.Network == network) >= MaxDialbacksPerNetworkPerMinute) return $"this node dials back {network} at most {MaxDialbacksPerNetworkPerMinute} times a minute";
            _recent.Enqueue((now, network));
            return null;
        }
    }

    /// <summary>A dial-back this node asked for: the echo, and who was asked (null when only an address was known).</summary>
    private sealed record Waiting(PeerId? Asked)
    {
        public TaskCompletionSource Echo { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
