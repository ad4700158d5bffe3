using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using MoEMesh.Dht.Ids;
using MoEMesh.Experts.Weights;
using MoEMesh.Node.Serving;
using MoEMesh.Node.Weights;
using MoEMesh.Protocol;
using MoEMesh.Protocol.Addressing;
using MoEMesh.Protocol.Identity;
using MoEMesh.Protocol.Rpc;
using MoEMesh.Protocol.Wire;
using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Invocation;
using MoEMesh.Routing.Weights;

namespace MoEMesh.Node.Hosting;

/// <summary>
/// Published weights: every Weights:PublishPeriod (and on a graceful stop) each expert that changed since its
/// last snapshot is published: its weights alone, as safetensors, signed by this node, held here, announced
/// under <c>weights:&lt;uid&gt;</c> and offered to the Weights:Copies peers nearest that key, which fetch, check,
/// hold and announce a copy (<c>weights.offer</c>). An expert with no checkpoint here starts from the newest
/// verified snapshot the swarm holds instead of its seed. Reconciling replicas is in <c>MeshNode.Reconcile.cs</c>.
/// </summary>
public sealed partial class MeshNode
{
    /// <summary>The peer method by which a host offers a peer a copy of a snapshot to hold.</summary>
    public const string WeightsOfferMethod = "weights.offer";

    /// <summary>The folder, inside the checkpoint folder, that holds snapshots.</summary>
    public const string WeightsFolderName = ".published";

    private WeightsStore _weights = null!;
    private BlobClient _blobs = null!;
    private readonly SemaphoreSlim _offersTaken = new(2);

    /// <summary>Published weights in the DHT; set once started.</summary>
    public WeightsDirectory Weights { get; private set; } = null!;

    /// <summary>The snapshots this node holds (its own and copies for others): count and bytes.</summary>
    public (int Count, long Bytes) HeldSnapshots => _weights?.Usage() ?? (0, 0);

    private void HoldWeights(PeerRouter router)
    {
        _weights = new WeightsStore(Path.Combine(options.CheckpointDirectory, WeightsFolderName), options.Weights, PeerId);
        _blobs = new BlobClient(Transport, time);
        Weights = new WeightsDirectory(Dht);
        router.Map(WeightsOfferMethod, TakeOfferAsync);
    }

    /// <summary>
    /// Announces at once the newest snapshot held of each of <paramref name="uids"/>, and the records of those this
    /// node hosts (which name the snapshot their weights now are); the rest of this node's records wait for the
    /// next announcement: cheaper than announcing everything each time a snapshot changes.
    /// </summary>
    private async Task AnnounceWeightsAsync(IEnumerable<string> uids, CancellationToken cancellationToken)
    {
        var wanted = uids.ToHashSet(StringComparer.Ordinal);
        var now = time.GetUtcNow();
        var expiration = now + 2 * options.UpdatePeriod;
        var records = WeightsRecords().Where(r => wanted.Contains(r.Uid.Value)).ToArray();
        var experts = Experts.Values.Where(e => wanted.Contains(e.Uid.Value)).Select(e => (e.Uid, e.Record(AnnounceAddresses, now))).ToArray();
        var results = await Task.WhenAll(
            records.Length > 0 ? Weights.DeclareAsync(identity, records, expiration, cancellationToken) : Task.FromResult<IReadOnlyList<Dht.DhtStoreResult>>([]),
            experts.Length > 0 && !_stopAnnouncing.IsCancellationRequested ? Directory.DeclareAsync(identity, experts, expiration, cancellationToken) : Task.FromResult<IReadOnlyList<Dht.DhtStoreResult>>([]));
        foreach (var failed in results.SelectMany(r => r).Where(r => !r.Succeeded)) LogAnnounceFailed(_logger, failed.Record.Key, failed.Problem ?? "no replica");
    }

    /// <summary>The newest snapshot held of each uid, as announced.</summary>
    private (ExpertUid Uid, WeightsRecord Record)[] WeightsRecords() => _weights.Newest().Select(h =>
    {
        var record = new WeightsRecord { Snapshot = h.Snapshot };
        record.Addresses.AddRange(AnnounceAddresses);
        return (ExpertUid.Parse(h.Uid), record);
    }).ToArray();

    private Task PublishLoopAsync(CancellationToken stopping) => !options.Weights.Publish || options.ClientMode ? Task.CompletedTask
        : EveryLoggedAsync(options.Weights.PublishPeriod, PublishWeightsAsync, LogPublishError, stopping);

    /// <summary>
    /// Publishes every expert whose weights changed since its last snapshot (and that trained, or took its
    /// weights from elsewhere), announces the snapshots and offers each new one to the peers that should hold
    /// copies. Returns the snapshots published.
    /// </summary>
    internal async Task<IReadOnlyList<HeldSnapshot>> PublishWeightsAsync(CancellationToken cancellationToken)
    {
        var published = new List<HeldSnapshot>();
        foreach (var expert in Experts.Values)
        {
            if (!Publishable(expert)) continue;
            try
            {
                published.Add(await Task.Run(() => Publish(expert), cancellationToken));
            }
            catch (IOException e)
            {
                LogPublishFailed(_logger, expert.Uid.Value, e.Message);
            }
        }
        if (published.Count == 0) return published;
        await AnnounceWeightsAsync(published.Select(p => p.Uid), cancellationToken);
        await Task.WhenAll(published.Select(p => OfferCopiesAsync(p, cancellationToken)));
        return published;
    }

    /// <summary>
    /// On a graceful stop, once no call is served: publishes what trained since its last snapshot and offers the
    /// new snapshots to peers (which fetch them from this node before it closes its port), within DrainTimeout.
    /// </summary>
    private async Task PublishOnStopAsync()
    {
        if (!options.Weights.Publish || options.ClientMode) return;
        using var limit = new CancellationTokenSource(options.DrainTimeout, time);
        try
        {
            var published = Experts.Values.Where(Publishable).Select(e => Publish(e)).ToArray();
            await Task.WhenAll(published.Select(p => OfferCopiesAsync(p, limit.Token)));
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            LogPublishFailed(_logger, "experts at stop", e.Message);
        }
    }

    /// <summary>Whether an expert has weights worth publishing that its newest snapshot does not hold: trained, or taken from elsewhere.</summary>
    private static bool Publishable(HostedExpert expert) =>
        expert.CurrentSnapshot is null && (expert.Backend.UpdateCount > 0 || expert.Backend.Lineage.Source != WeightsLineage.Seed);

    /// <summary>Writes, hashes, signs and holds a snapshot of <paramref name="expert"/>'s weights as they are now.</summary>
    private HeldSnapshot Publish(HostedExpert expert, IEnumerable<WeightsContribution>? averagedFrom = null)
    {
        long changes = expert.Backend.Changes;
        var lineage = expert.Backend.Lineage;
        using var copy = ExpertWeights.Of(expert.Backend);
        var path = _weights.NewIncomingPath();
        string sha;
        using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20))
        {
            copy.Write(file);
            file.Position = 0;
            sha = Convert.ToHexStringLower(SHA256.HashData(file));
        }
        var snapshot = WeightsSnapshots.Sign(expert.Uid.Value, copy.Updates, Math.Min(lineage.AtUpdate, copy.Updates), sha, (ulong)new FileInfo(path).Length, expert.SchemaHash,
            time.GetUtcNow(), identity, averagedFrom);
        var held = _weights.Install(path, snapshot);
        expert.Published = held;
        expert.PublishedChanges = changes;
        LogPublished(_logger, expert.Uid.Value, copy.Updates, sha[..12]);
        return held;
    }

    /// <summary>Offers a copy of <paramref name="held"/> to the peers nearest its key (each fetches it from here); a refusal is logged, not retried.</summary>
    private async Task OfferCopiesAsync(HeldSnapshot held, CancellationToken cancellationToken)
    {
        if (options.Weights.Copies == 0) return;
        var key = NodeId.ForKey(WeightsDirectory.KeyOf(ExpertUid.Parse(held.Uid)));
        var targets = Dht.Contacts.Where(c => c.PeerId != PeerId).OrderBy(c => c.Id.DistanceTo(key)).Take(options.Weights.Copies).ToArray();
        var offer = new WeightsOfferRequest { Snapshot = held.Snapshot };
        offer.Addresses.AddRange(AnnounceAddresses);
        await Task.WhenAll(targets.Select(async target =>
        {
            try
            {
                using var response = await Transport.CallAsync(target.Endpoint, PeerRequest.Create(WeightsOfferMethod, offer, default, time.GetUtcNow() + OfferTimeout), cancellationToken);
                var answer = response.IsOk ? response.ParseHeader(WeightsOfferResponse.Parser) : null;
                if (answer is not { Taken: true }) LogOfferRefused(_logger, target.PeerId.ToString(), held.Uid, answer?.Reason ?? response.ToString());
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogOfferRefused(_logger, target.PeerId.ToString(), held.Uid, e.Message);
            }
        }));
    }

    /// <summary>The most adopting published weights may add to a start.</summary>
    private static readonly TimeSpan AdoptTimeout = TimeSpan.FromMinutes(2);

    /// <summary>How long a peer has to fetch and check a snapshot it is offered.</summary>
    private static readonly TimeSpan OfferTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// weights.offer: holds a copy of a snapshot its own host offers (signed by the caller, within the size
    /// limit), fetched from the caller and checked (SHA-256, a safetensors file of finite values), then
    /// announced. At most two offers are taken at once; others are refused as busy.
    /// </summary>
    private async ValueTask<PeerResponse> TakeOfferAsync(PeerRequest request, CancellationToken cancellationToken)
    {
        var offer = request.ParseHeader(WeightsOfferRequest.Parser);
        if (OfferProblem(offer, request.Caller) is { } problem) return PeerResponse.Ok(new WeightsOfferResponse { Reason = problem });
        if (_weights.FindBySha(offer.Snapshot.Sha256) is not null) return PeerResponse.Ok(new WeightsOfferResponse { Taken = true });
        if (!await _offersTaken.WaitAsync(0, cancellationToken)) return PeerResponse.Ok(new WeightsOfferResponse { Reason = "busy taking other copies; offer it again later" });
        try
        {
            var from = new PeerEndpoint(PeerAddress.Parse(offer.Addresses.First(a => PeerAddress.TryParse(a, out _))), request.Caller);
            var fetched = await FetchSnapshotAsync(from, offer.Snapshot, cancellationToken);
            if (fetched.Problem is not null) return PeerResponse.Ok(new WeightsOfferResponse { Reason = fetched.Problem });
            _weights.Install(fetched.Path!, offer.Snapshot);
            LogHolding(_logger, offer.Snapshot.Uid, offer.Snapshot.Updates, request.Caller.ToString());
            await AnnounceWeightsAsync([offer.Snapshot.Uid], cancellationToken);
            return PeerResponse.Ok(new WeightsOfferResponse { Taken = true });
        }
        finally
        {
            _offersTaken.Release();
        }
    }

    private string? OfferProblem(WeightsOfferRequest offer, PeerId caller)
    {
        if (options.ClientMode) return "a client-mode node holds nothing for others";
        if (offer.Snapshot is not { } s) return "the offer carries no snapshot";
        if (!ExpertUid.TryParse(s.Uid, out _, out var error)) return $"'{s.Uid}' is not a uid: {error}";
        if (WeightsSnapshots.SignerOf(s) != caller) return "a host offers only snapshots it signed itself";
        if (WeightsSnapshots.Problem(s, s.Uid, s.SchemaHash) is { } problem) return $"the snapshot is refused: {problem}";
        if ((long)s.Size > options.Weights.MaxSnapshotBytes) return $"the snapshot has {s.Size} bytes; this node holds at most {options.Weights.MaxSnapshotBytes} (Weights:MaxSnapshotBytes)";
        if (!offer.Addresses.Any(a => PeerAddress.TryParse(a, out _))) return "the offer names no address to fetch it from";
        return null;
    }

    /// <summary>
    /// Fetches a snapshot's file into the incoming folder and checks it: the SHA-256 asked for, a safetensors
    /// file whose values are all finite. Returns the path, or why it was refused (nothing is left behind then).
    /// </summary>
    private async Task<(string? Path, string? Problem)> FetchSnapshotAsync(PeerEndpoint from, WeightsSnapshot snapshot, CancellationToken cancellationToken)
    {
        var path = _weights.NewIncomingPath();
        try
        {
            string? problem;
            await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
                problem = await _blobs.FetchAsync(from, snapshot.Sha256, (long)snapshot.Size, options.Weights.MaxSnapshotBytes, file, OfferTimeout, cancellationToken);
            problem ??= NonFinite(path);
            if (problem is null) return (path, null);
            File.Delete(path);
            return (null, problem);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>Why a snapshot file cannot be weights: not safetensors, or a value that is not finite; null when it can.</summary>
    private static string? NonFinite(string path)
    {
        try
        {
            using var content = MoEMesh.Tensors.Serialization.SafeTensorsFile.ReadFile(path);
            return content.Tensors.Select(t => ExpertWeights.NonFinite(t.Key, t.Value)).FirstOrDefault(p => p is not null);
        }
        catch (InvalidDataException e)
        {
            return $"the file is not safetensors: {e.Message}";
        }
    }

    /// <summary>
    /// Gives each expert that starts from its seed (no checkpoint here) the newest published snapshot of its
    /// uid that checks out, before it is announced; a snapshot that does not is logged and the next tried.
    /// </summary>
    private async Task AdoptPublishedWeightsAsync(CancellationToken cancellationToken)
    {
        var fresh = Experts.Values.Where(e => e.CheckpointedAt is null && e.Backend.UpdateCount == 0).ToArray();
        if (!options.Weights.Adopt || fresh.Length == 0) return;
        // Holders that stall cannot hold the start up for long: past AdoptTimeout the rest start from their seed.
        using var limit = new CancellationTokenSource(AdoptTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, limit.Token);
        try
        {
            var published = await Weights.FindAsync(fresh.Select(e => e.Uid).ToArray(), linked.Token);
            foreach (var expert in fresh) await TryAdoptAsync(expert, published[expert.Uid], s => s.Updates > 0, linked.Token);
        }
        catch (OperationCanceledException) when (limit.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            LogAdoptionTimedOut(_logger, AdoptTimeout.TotalSeconds);
        }
    }

    /// <summary>
    /// Puts into <paramref name="expert"/> the first of <paramref name="holders"/>' snapshots that is
    /// <paramref name="wanted"/>, signed by a host it trusts (Weights:AdoptFrom), of its schema, and whose bytes
    /// check out (SHA-256, shapes, finite values). Returns whether one was adopted.
    /// </summary>
    private async Task<bool> TryAdoptAsync(HostedExpert expert, IReadOnlyList<WeightsHolderInfo> holders, Func<WeightsSnapshot, bool> wanted, CancellationToken cancellationToken)
    {
        foreach (var holder in holders.Where(h => wanted(h.Snapshot)))
        {
            var s = holder.Snapshot;
            if (WeightsSnapshots.Problem(s, expert.Uid.Value, expert.SchemaHash, options.Weights.AdoptFrom) is { } problem)
            {
                LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), problem);
                continue;
            }
            try
            {
                if (await ReadSnapshotAsync(holder, expert, cancellationToken) is not { } weights) continue;
                using (weights)
                {
                    var signer = WeightsSnapshots.SignerOf(s)!.Value.ToString();
                    weights.LoadInto(expert.Backend, new WeightsLineage(WeightsLineage.Adopted, signer, s.Updates));
                    expert.Published = _weights.FindBySha(s.Sha256);
                    expert.PublishedChanges = expert.Backend.Changes;
                    LogAdopted(_logger, expert.Uid.Value, s.Updates, signer, holder.Holder.ToString());
                    return true;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // Whatever a holder's copy does wrong (unreachable, cut off, damaged) is that holder's failure: the next is tried.
                LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), e.Message);
            }
        }
        return false;
    }

    /// <summary>
    /// The weights of a snapshot, held here already or fetched from <paramref name="holder"/> (and then held
    /// here too), read for <paramref name="expert"/>; null (logged) when the holder's copy does not check out.
    /// </summary>
    private async Task<ExpertWeights?> ReadSnapshotAsync(WeightsHolderInfo holder, HostedExpert expert, CancellationToken cancellationToken)
    {
        var s = holder.Snapshot;
        var held = _weights.FindBySha(s.Sha256);
        if (held is null)
        {
            if ((long)s.Size > options.Weights.MaxSnapshotBytes)
            {
                LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), $"it has {s.Size} bytes; at most {options.Weights.MaxSnapshotBytes} are taken (Weights:MaxSnapshotBytes)");
                return null;
            }
            var fetched = await FetchSnapshotAsync(holder.Endpoint, s, cancellationToken);
            if (fetched.Problem is not null)
            {
                LogSnapshotRefused(_logger, expert.Uid.Value, holder.Holder.ToString(), fetched.Problem);
                return null;
            }
            held = _weights.Install(fetched.Path!, s);
        }
        await using var file = new FileStream(held.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.Asynchronous);
        return ExpertWeights.Read(file, expert.Backend, s.Updates);
    }

    [LoggerMessage(EventId = 530, Level = LogLevel.Information, Message = "Published the weights of {ExpertUid} at update {Updates} (snapshot {Sha})")]
    private static partial void LogPublished(ILogger logger, string expertUid, long updates, string sha);

    [LoggerMessage(EventId = 531, Level = LogLevel.Warning, Message = "Could not publish the weights of {ExpertUid}: {Problem}")]
    private static partial void LogPublishFailed(ILogger logger, string expertUid, string problem);

    [LoggerMessage(EventId = 532, Level = LogLevel.Error, Message = "Publishing weights failed")]
    private static partial void LogPublishError(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 533, Level = LogLevel.Information, Message = "{Peer} did not take a copy of the weights of {ExpertUid}: {Reason}")]
    private static partial void LogOfferRefused(ILogger logger, string peer, string expertUid, string reason);

    [LoggerMessage(EventId = 534, Level = LogLevel.Information, Message = "Holding a copy of the weights of {ExpertUid} at update {Updates} for {Host}")]
    private static partial void LogHolding(ILogger logger, string expertUid, long updates, string host);

    [LoggerMessage(EventId = 535, Level = LogLevel.Information, Message = "Adopted the published weights of {ExpertUid} at update {Updates}, signed by {Signer}, from {Holder}")]
    private static partial void LogAdopted(ILogger logger, string expertUid, long updates, string signer, string holder);

    [LoggerMessage(EventId = 540, Level = LogLevel.Warning, Message = "Adopting published weights took longer than {Seconds} s; the experts not adopted by then start from their seed")]
    private static partial void LogAdoptionTimedOut(ILogger logger, double seconds);

    [LoggerMessage(EventId = 536, Level = LogLevel.Warning, Message = "Refused a snapshot of {ExpertUid} held by {Holder}: {Problem}")]
    private static partial void LogSnapshotRefused(ILogger logger, string expertUid, string holder, string problem);
}
