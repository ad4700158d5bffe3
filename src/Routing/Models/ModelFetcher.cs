using MoEMesh.Protocol.Wire.Experts;
using MoEMesh.Routing.Directory;
using MoEMesh.Routing.Invocation;

namespace MoEMesh.Routing.Models;

/// <summary>
/// Fetches a model from the peers that hold it: the newest version first, holder by holder. A copy is
/// used only when its bytes have the announced SHA-256, its publication's signature (when it has one)
/// verifies, and it loads as a model file of that name and version; a tampered, truncated or misnamed
/// copy is refused and the next holder tried. Which holders count: for a node that holds no copy, those
/// of the publisher most holders attest (<see cref="ModelPublications.Trusted"/>); for one that has a
/// copy, only newer versions from that copy's publisher.
/// </summary>
public sealed class ModelFetcher(ModelDirectory directory, BlobClient blobs, TimeSpan perChunkTimeout)
{
    /// <summary>
    /// Fetches <paramref name="name"/> into a new file in <paramref name="folder"/> (the caller owns it) and loads it.
    /// </summary>
    /// <param name="name">The model.</param>
    /// <param name="folder">Where the fetched file is written.</param>
    /// <param name="maxBytes">Copies larger than this are not considered.</param>
    /// <param name="held">The publication of the copy the caller has, or null: then only newer versions from its publisher count.</param>
    /// <param name="cancellationToken">Stops the fetch.</param>
    /// <exception cref="ModelNotFoundException">No peer announces the model (or, with <paramref name="held"/>, no newer version of it).</exception>
    /// <exception cref="ModelFetchFailedException">Every holder failed; the message says how each did.</exception>
    public async Task<FetchedModel> FetchAsync(string name, string folder, long maxBytes, ModelPublication? held, CancellationToken cancellationToken)
    {
        var announced = (await directory.FindAsync(name, cancellationToken)).Where(h => h.Size <= maxBytes);
        var holders = held is null
            ? ModelPublications.Trusted(announced)
            : announced.Where(h => h.Version > held.Version && ModelPublications.SamePublisher(h.Publication, held)).ToArray();
        if (holders.Count == 0) throw new ModelNotFoundException(name);
        return await FetchFromAsync(holders, folder, maxBytes, cancellationToken);
    }

    /// <summary>Fetches from <paramref name="holders"/> in order (see <see cref="FetchAsync"/>), taking at most <paramref name="maxBytes"/> from any.</summary>
    /// <exception cref="ModelFetchFailedException">Every holder failed.</exception>
    public async Task<FetchedModel> FetchFromAsync(IReadOnlyList<ModelHostInfo> holders, string folder, long maxBytes, CancellationToken cancellationToken)
    {
        System.IO.Directory.CreateDirectory(folder);
        var problems = new List<string>();
        foreach (var holder in holders)
        {
            var path = Path.Combine(folder, $".fetch-{holder.Name}-{Guid.NewGuid():N}.tmp");
            try
            {
                if (ModelPublications.IsSigned(holder.Publication) && !ModelPublications.Verify(holder.Publication))
                {
                    problems.Add($"{holder.Host}: the publication of version {holder.Version} does not verify against its publisher's key");
                    continue;
                }
                string? problem;
                await using (var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20, FileOptions.Asynchronous))
                    problem = await blobs.FetchAsync(holder.Endpoint, holder.Sha256, holder.Size, maxBytes, file, perChunkTimeout, cancellationToken);
                if (problem is not null)
                {
                    problems.Add(problem);
                    Discard(path);
                    continue;
                }
                var loaded = ModelFile.Load(path);
                if (loaded.Name != holder.Name || loaded.Version != holder.Version)
                {
                    problems.Add($"{holder.Host}: the file holds {loaded.Name} version {loaded.Version}, not {holder.Name} version {holder.Version}");
                    Discard(path);
                    continue;
                }
                return new FetchedModel(holder, path, loaded);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Whatever a holder's copy does wrong, it is that holder's failure: the next one is tried.
                problems.Add($"{holder.Host}: {e.Message}");
                Discard(path);
            }
            catch
            {
                Discard(path);
                throw;
            }
        }
        throw new ModelFetchFailedException(holders[0].Name, problems);
    }

    /// <summary>Removes a partial or refused copy; one already gone (its folder too) is no failure of the fetch.</summary>
    private static void Discard(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }
}

/// <summary>A model fetched and checked: where from, the file it is in, and the model it holds.</summary>
public sealed record FetchedModel(ModelHostInfo Source, string Path, LoadedModelFile Model);

/// <summary>No peer announces the model.</summary>
public sealed class ModelNotFoundException(string name) : Exception($"No peer holds a model called '{name}'.")
{
    /// <summary>The model asked for.</summary>
    public string Name { get; } = name;
}

/// <summary>Every holder of a model failed to give a good copy.</summary>
public sealed class ModelFetchFailedException(string name, IReadOnlyList<string> problems)
    : Exception($"No holder of '{name}' gave a good copy: {string.Join("; ", problems)}")
{
    /// <summary>What went wrong with each holder.</summary>
    public IReadOnlyList<string> Problems { get; } = problems;
}
